#!/usr/bin/env python3
"""The end-to-end harness: abqd in front of a real ActiveSync upstream, driven as a
phone is. Every suite in tests/e2e imports it (test_proxy.py, test_access.py,
test_quarantine.py, test_notices.py, test_daemon.py; test_e2e.py runs those five
on one fixture; test_faults.py, test_workers.py, test_gate.py, test_admin_api.py,
test_console.py and test_multinode.py bring their own setups).

A run is self-contained: it installs what the fixture needs
(tests/fixture/install.sh, as root, idempotent), starts its own fixture (SOGo,
Dovecot, PostgreSQL, memcached; tests/fixture/upstream.sh up) on free ports in
its own scratch folder, and starts abqd in the foreground with a generated
config (SQLite store in the same folder, log level debug, stderr in a file that
is printed when something fails). Everything is torn down at the end, failure
or not: abqd with SIGTERM, the fixture with `upstream.sh down`.

The phone speaks EAS over http.client. Its WBXML is built from XML with Debian's
xml2wbxml (libwbxml2-utils) and every answer is decoded with wbxml2xml: an
oracle independent of abqd's own codec. The administrator is the real abqctl,
working on the daemon's store. Each test asserts what the phone or the
administrator sees; a missing tool is a failure, never a skip. `Case` is the
TestCase every suite's class derives from: the administrator (`admin`), polling
(`until`), the quarantined phone, a second abqd (`side_abqd`), the notice rig.

Python 3 standard library only.
"""

import argparse
import base64
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import uuid
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixture"))
import maildir as maildir_lib  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURE = os.path.join(ROOT, "tests", "fixture")
UPSTREAM_SH = os.path.join(FIXTURE, "upstream.sh")
INSTALL_SH = os.path.join(FIXTURE, "install.sh")

ABQD = None
ABQCTL = None
SMTPD = "/usr/sbin/smtpd"  # OpenSMTPD, for the notices test (--smtpd)
H = None  # the Harness of this run
# A command abqd runs under ($ABQ_E2E_WRAP, split on spaces), e.g. valgrind: the
# whole suite then runs against abqd under it (tests/CMakeLists.txt, e2e-valgrind).
WRAP = os.environ.get("ABQ_E2E_WRAP", "").split()

EAS_PATH = "/Microsoft-Server-ActiveSync"
WBXML_TYPE = "application/vnd.ms-sync.wbxml"
DOCTYPE = ('<!DOCTYPE ActiveSync PUBLIC "-//MICROSOFT//DTD ActiveSync//EN" '
           '"http://www.microsoft.com/">')
WBXML_HEADER = b"\x03\x01\x6a\x00"
# eas-protocol.md: the FolderSync request with SyncKey 0, byte for byte.
FOLDERSYNC_0 = bytes.fromhex("03 01 6a 00 00 07 56 52 03 30 00 01 01")
# What upstream.sh seeds into alice's INBOX.
ALICE_SEEDED = ["Welcome to the fixture", "Quarterly report draft", "Café on Friday?"]
TOOLS = ["xml2wbxml", "wbxml2xml", "ss", "curl"]

TIMINGS = []


class Timer:
    """`with Timer("label"):` prints and records how long a slow step took."""

    def __init__(self, label):
        self.label = label

    def __enter__(self):
        self.t0 = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.elapsed = time.monotonic() - self.t0
        TIMINGS.append((self.label, self.elapsed))
        print("  [time] %-55s %6.2f s" % (self.label, self.elapsed), flush=True)
        return False


def new_id(tag):
    return "e2e%s%s" % (tag, uuid.uuid4().hex[:10])


# ------------------------------------------------------------------ WBXML oracle

_wbxml_cache = {}


def wbxml(xml_body):
    """XML (without prolog) -> WBXML, by xml2wbxml."""
    if xml_body in _wbxml_cache:
        return _wbxml_cache[xml_body]
    d = tempfile.mkdtemp(prefix="e2e-x2w-", dir=H.work if H else None)
    try:
        src, dst = os.path.join(d, "in.xml"), os.path.join(d, "out.wbxml")
        with open(src, "w", encoding="utf-8") as f:
            f.write('<?xml version="1.0" encoding="utf-8"?>\n%s\n%s\n' % (DOCTYPE, xml_body))
        p = subprocess.run(["xml2wbxml", "-a", "-n", "-o", dst, src], capture_output=True,
                           text=True, timeout=30)
        if p.returncode != 0 or not os.path.exists(dst):
            raise AssertionError("xml2wbxml failed on %r: %s" % (xml_body, p.stdout + p.stderr))
        with open(dst, "rb") as f:
            data = f.read()
    finally:
        shutil.rmtree(d, ignore_errors=True)
    if not data.startswith(WBXML_HEADER):
        raise AssertionError("xml2wbxml wrote header %s" % data[:4].hex(" "))
    _wbxml_cache[xml_body] = data
    return data


def decode(body):
    """WBXML -> ElementTree root with the namespaces stripped, by wbxml2xml."""
    d = tempfile.mkdtemp(prefix="e2e-w2x-", dir=H.work if H else None)
    try:
        src, dst = os.path.join(d, "in.wbxml"), os.path.join(d, "out.xml")
        with open(src, "wb") as f:
            f.write(body)
        p = subprocess.run(["wbxml2xml", "-l", "ACTIVESYNC", "-m", "0", "-o", dst, src],
                           capture_output=True, text=True, timeout=30)
        if p.returncode != 0 or not os.path.exists(dst):
            raise AssertionError("wbxml2xml cannot decode %s...: %s" % (
                body[:32].hex(" "), (p.stdout + p.stderr).strip()))
        with open(dst, "rb") as f:
            xml = f.read()
    finally:
        shutil.rmtree(d, ignore_errors=True)
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as e:
        raise AssertionError("wbxml2xml's XML does not parse (%s): %r" % (e, xml[:300]))
    for el in root.iter():
        if "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]
    return root


def text_of(el, path):
    found = el.find(path)
    return None if found is None else (found.text or "")


# ------------------------------------------------------------------ requests

def ping_xml(folder_id, heartbeat):
    return ('<Ping xmlns="Ping:"><HeartbeatInterval>%d</HeartbeatInterval><Folders><Folder>'
            '<Id>%s</Id><Class>Email</Class></Folder></Folders></Ping>' % (heartbeat, folder_id))


def sync_xml(coll_id, key, get_changes):
    if not get_changes:
        return ('<Sync xmlns="AirSync:"><Collections><Collection><SyncKey>%s</SyncKey>'
                '<CollectionId>%s</CollectionId></Collection></Collections></Sync>' % (key, coll_id))
    return ('<Sync xmlns="AirSync:" xmlns:asb="AirSyncBase:"><Collections><Collection>'
            '<SyncKey>%s</SyncKey><CollectionId>%s</CollectionId><DeletesAsMoves>1</DeletesAsMoves>'
            '<GetChanges/><WindowSize>100</WindowSize><Options><FilterType>0</FilterType>'
            '<asb:BodyPreference><asb:Type>1</asb:Type><asb:TruncationSize>5000</asb:TruncationSize>'
            '</asb:BodyPreference></Options></Collection></Collections></Sync>' % (key, coll_id))


def foldersync_xml(key):
    return ('<FolderSync xmlns="FolderHierarchy:"><SyncKey>%s</SyncKey></FolderSync>' % key)


def hanging_sync_xml(coll_id, key, wait=1):
    """A Sync that asks to be held (MS-ASCMD 2.2.3.198): Wait in minutes."""
    return ('<Sync xmlns="AirSync:"><Collections><Collection><SyncKey>%s</SyncKey>'
            '<CollectionId>%s</CollectionId></Collection></Collections><Wait>%d</Wait></Sync>'
            % (key, coll_id, wait))


def folder_changes(tc, r, what):
    """A FolderSync answer of Status 1: (SyncKey, Count, [(op, ServerId, Type)]) in
    document order, op Add, Update or Delete."""
    assert_status_doc(tc, r, "FolderSync", 1, what)
    doc = r.doc()
    tc.assertEqual(doc.tag, "FolderSync", "%s: %s" % (what, ET.tostring(doc)[:300]))
    ch = doc.find("Changes")
    ops = []
    count = None
    if ch is not None:
        count = text_of(ch, "Count")
        for el in ch:
            if el.tag in ("Add", "Update", "Delete"):
                ops.append((el.tag, text_of(el, "ServerId"), text_of(el, "Type")))
    return text_of(doc, "SyncKey"), count, ops


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def settings_xml(info):
    order = ["Model", "IMEI", "FriendlyName", "OS", "OSLanguage", "PhoneNumber", "UserAgent",
             "MobileOperator"]
    inner = "".join("<%s>%s</%s>" % (k, esc(info[k]), k) for k in order if k in info)
    return ('<Settings xmlns="Settings:"><DeviceInformation><Set>%s</Set></DeviceInformation>'
            '</Settings>' % inner)


class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body
        self._doc = None

    def doc(self):
        if self._doc is None:
            if not self.body:
                raise AssertionError("HTTP %d with an empty body (headers %r)" % (
                    self.status, self.headers))
            self._doc = decode(self.body)
        return self._doc

    def __repr__(self):
        return "HTTP %d %r body %r" % (self.status, self.headers, self.body[:200])


class Phone:
    """An EAS client: one user, one DeviceId, against abqd or the fixture itself."""

    def __init__(self, device_id=None, user="alice", password="secret", version="14.1",
                 device_type="SmartPhone", user_agent="abqd-e2e/1.0", direct=False):
        self.device_id = device_id or new_id("d")
        self.user, self.password, self.version = user, password, version
        self.device_type, self.user_agent = device_type, user_agent
        self.policy_key = "0"  # X-MS-PolicyKey, as a phone keeps it after Provision
        if direct:
            u = urllib.parse.urlsplit(H.fixture_url)
            self.host, self.port, self.path = u.hostname, u.port, u.path
        else:
            self.host, self.port, self.path = "127.0.0.1", H.abqd_port, EAS_PATH

    def auth(self, password=None):
        pw = self.password if password is None else password
        return "Basic " + base64.b64encode(("%s:%s" % (self.user, pw)).encode()).decode()

    def query(self, cmd):
        return urllib.parse.urlencode({"Cmd": cmd, "User": self.user, "DeviceId": self.device_id,
                                       "DeviceType": self.device_type})

    def headers(self, version=None, password=None, auth=True):
        h = {"User-Agent": self.user_agent, "Content-Type": WBXML_TYPE,
             "X-MS-PolicyKey": str(self.policy_key)}
        v = self.version if version is None else version
        if v:
            h["MS-ASProtocolVersion"] = v
        if auth:
            h["Authorization"] = self.auth(password)
        return h

    tls = None  # an ssl.SSLContext: speak HTTPS to abqd

    def http(self, method, target, headers, body=None, timeout=60):
        if self.tls is not None:
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=timeout,
                                               context=self.tls)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, target, body=body, headers=headers)
            r = conn.getresponse()
            return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()

    def post(self, cmd, body, version=None, password=None, auth=True, timeout=60, query=None):
        target = self.path + "?" + (query if query is not None else self.query(cmd))
        return self.http("POST", target, self.headers(version, password, auth), body, timeout)

    def raw_request(self, cmd, body, version=None):
        """The bytes of a POST, for a socket the test controls."""
        h = self.headers(version)
        h["Host"] = "%s:%d" % (self.host, self.port)
        h["Content-Length"] = str(len(body))
        head = "POST %s?%s HTTP/1.1\r\n" % (self.path, self.query(cmd))
        head += "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
        return head.encode() + body

    def options(self, auth=True):
        h = {"User-Agent": self.user_agent}
        if auth:
            h["Authorization"] = self.auth()
        return self.http("OPTIONS", self.path, h)

    # ---- commands

    def foldersync(self, version=None):
        return self.post("FolderSync", FOLDERSYNC_0, version=version)

    def folders(self, tc):
        """FolderSync 0, asserting success; returns [(ServerId, ParentId, DisplayName, Type)]."""
        r = self.foldersync()
        tc.assertEqual(r.status, 200, "FolderSync: %r" % r)
        tc.assertIn(WBXML_TYPE, r.headers.get("content-type", ""), "FolderSync: %r" % r)
        doc = r.doc()
        tc.assertEqual(doc.tag, "FolderSync", "FolderSync root: %s" % ET.tostring(doc)[:300])
        tc.assertEqual(text_of(doc, "Status"), "1", "FolderSync Status: %r" % r)
        out = [(text_of(a, "ServerId"), text_of(a, "ParentId"), text_of(a, "DisplayName"),
                text_of(a, "Type")) for a in doc.iter("Add")]
        tc.assertTrue(out, "FolderSync: no folders: %r" % r)
        return out

    def inbox(self, tc):
        fs = self.folders(tc)
        inbox = [f for f in fs if f[3] == "2"]
        tc.assertEqual(len(inbox), 1, "FolderSync: not exactly one Inbox (Type 2): %r" % fs)
        return inbox[0][0]

    def sync0(self, tc, coll):
        r = self.post("Sync", wbxml(sync_xml(coll, "0", False)))
        tc.assertEqual(r.status, 200, "Sync 0: %r" % r)
        c = r.doc().find(".//Collection")
        tc.assertIsNotNone(c, "Sync 0: no Collection: %r" % r)
        tc.assertEqual(text_of(c, "Status"), "1", "Sync 0 status: %r" % r)
        key = text_of(c, "SyncKey")
        tc.assertTrue(key and key != "0", "Sync 0: no new SyncKey: %r" % r)
        return key

    def sync_changes(self, tc, coll, key):
        """GetChanges until nothing is left (then once more, as phones confirm the key)."""
        subjects = []
        for _ in range(20):
            r = self.post("Sync", wbxml(sync_xml(coll, key, True)))
            tc.assertEqual(r.status, 200, "Sync GetChanges: %r" % r)
            if not r.body:  # an empty 200: nothing changed since `key`
                return key, subjects
            c = r.doc().find(".//Collection")
            tc.assertIsNotNone(c, "Sync: no Collection: %r" % r)
            tc.assertEqual(text_of(c, "Status"), "1", "Sync status: %r" % r)
            key = text_of(c, "SyncKey") or key
            for add in c.iter("Add"):
                subjects.append(text_of(add, ".//Subject") or "")
            if c.find("Commands") is None and c.find("MoreAvailable") is None:
                return key, subjects
        tc.fail("Sync: still changes after 20 rounds")


def assert_status_doc(tc, r, root, status, what):
    tc.assertEqual(r.status, 200, "%s: %r" % (what, r))
    tc.assertIn(WBXML_TYPE, r.headers.get("content-type", ""), "%s: %r" % (what, r))
    tc.assertTrue(r.body.startswith(WBXML_HEADER), "%s: WBXML header %s" % (what, r.body[:4].hex()))
    doc = r.doc()
    tc.assertEqual(doc.tag, root, "%s: root %s" % (what, ET.tostring(doc)))
    tc.assertEqual(text_of(doc, "Status"), str(status), "%s: %s" % (what, ET.tostring(doc)))


# ------------------------------------------------------------------ the harness

_PORT_RND = random.Random(os.getpid() ^ int(time.time() * 1000))
_PORTS_GIVEN = set()


def free_ports(n):
    """n distinct ports below the ephemeral range, each free to bind on loopback now,
    and never one this process was given before (two calls in the same moment must
    not hand out the same port: a port given may not be bound yet)."""
    ports = []
    while len(ports) < n:
        p = _PORT_RND.randrange(21000, 32000)
        if p in ports or p in _PORTS_GIVEN:
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            continue
        finally:
            s.close()
        ports.append(p)
    _PORTS_GIVEN.update(ports)
    return ports


def held_ping(phone, folder, heartbeat, timeout=90):
    """Start phone's Ping on folder in a thread; returns (thread, result dict), the
    dict getting "resp" (or "error") and "t" (time.monotonic() at the answer)."""
    result = {}

    def ping():
        try:
            result["resp"] = phone.post("Ping", wbxml(ping_xml(folder, heartbeat)),
                                        timeout=timeout)
        except Exception as e:  # noqa: BLE001 - reported by the caller
            result["error"] = e
        result["t"] = time.monotonic()

    th = threading.Thread(target=ping, daemon=True)
    th.start()
    return th, result


def stop_process(p, timeout=20):
    """SIGTERM p and wait for it; SIGKILL it if it is still there after timeout s."""
    p.terminate()
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def relay_config(work):
    """For an OpenSMTPD on loopback that delivers every mail to a Maildir: the
    Maildir (the mail user's) and smtpd.conf, both in work, and a free port for
    it. Returns (port, maildir, conf)."""
    import pwd
    maildir = os.path.join(work, "Maildir")
    os.makedirs(maildir, exist_ok=True)
    os.chmod(work, 0o755)
    mail = pwd.getpwnam("mail")
    os.chown(maildir, mail.pw_uid, mail.pw_gid)
    (port,) = free_ports(1)
    conf = os.path.join(work, "smtpd.conf")
    with open(conf, "w") as f:
        f.write('table vusers { "@" = "mail" }\n'
                "listen on 127.0.0.1 port %d\n"
                'action "local" maildir "%s" virtual <vusers> user mail\n'
                'match from any for any action "local"\n' % (port, maildir))
    os.chmod(conf, 0o644)
    return port, maildir, conf


def maildir_messages(maildir):
    """The mails delivered to maildir (new and cur), parsed."""
    return maildir_lib.messages(maildir)


class Harness:
    def __init__(self):
        self.work = None
        self.fixdir = None
        self.abqd = None
        self.abqd_log = None
        self.fixture_up = False
        self.failed = False

    # ---- fixture

    def fixture(self, *args, timeout=120):
        """upstream.sh ARGS --dir DIR. Its output goes to a file, not a pipe: the
        daemons it starts inherit the descriptors and would hold a pipe open."""
        out = os.path.join(self.work, "upstream-sh.out")
        with open(out, "w+") as f:
            p = subprocess.run([UPSTREAM_SH] + list(args) + ["--dir", self.fixdir],
                               stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                               env=self.fix_env, timeout=timeout)
            f.seek(0)
            p.stdout, p.stderr = f.read(), ""
        return p

    def fixture_ok(self, *args):
        p = self.fixture(*args)
        if p.returncode != 0:
            raise AssertionError("upstream.sh %s: rc %d\n%s%s" % (
                " ".join(args), p.returncode, p.stdout, p.stderr))
        return p.stdout

    def start(self):
        if os.getuid() != 0:
            raise AssertionError("the end-to-end tests need root (the fixture runs daemons "
                                 "as their system users)")
        with Timer("fixture install.sh"):
            with tempfile.TemporaryFile("w+") as out:  # a file: nothing can hold a pipe
                p = subprocess.run([INSTALL_SH], stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, timeout=900)
                out.seek(0)
                text = out.read()
        if p.returncode != 0:
            raise AssertionError("tests/fixture/install.sh failed (rc %d): %s" % (p.returncode, text))
        missing = [t for t in TOOLS if shutil.which(t) is None]
        if missing:
            raise AssertionError("missing tools after install.sh: %s (libwbxml2-utils, "
                                 "iproute2, curl)" % ", ".join(missing))
        for b in (ABQD, ABQCTL):
            if not os.access(b, os.X_OK):
                raise AssertionError("%s is not an executable" % b)

        # /tmp and world-traversable: the fixture's daemons run as their own users.
        self.work = tempfile.mkdtemp(prefix="abqd-e2e-", dir="/tmp")
        os.chmod(self.work, 0o755)
        self.fixdir = os.path.join(self.work, "fixture")
        (pg, imap, mc, sogo, smtp, self.abqd_port, self.admin_port) = free_ports(7)
        self.sogo_port = sogo
        self.imap_port = imap
        self.fix_env = dict(os.environ)
        for k in list(self.fix_env):
            if k.startswith("ABQ_FIX_"):
                del self.fix_env[k]
        self.fix_env.update({
            "ABQ_FIX_PG_PORT": str(pg), "ABQ_FIX_IMAP_PORT": str(imap),
            "ABQ_FIX_MEMCACHED_PORT": str(mc), "ABQ_FIX_SOGO_PORT": str(sogo),
            "ABQ_FIX_SMTP_PORT": str(smtp), "ABQ_FIX_SOGO_WORKERS": "10",
        })
        # Native mode's submission service and the fixture's own relay behind it.
        (self.submission_port, relay) = free_ports(2)
        self.fix_env.update({"ABQ_FIX_SUBMISSION_PORT": str(self.submission_port),
                             "ABQ_FIX_RELAY_PORT": str(relay)})
        print("work dir %s; ports: sogo %d, imap %d, pg %d, memcached %d, abqd %d" % (
            self.work, sogo, imap, pg, mc, self.abqd_port), flush=True)
        with Timer("fixture up"):
            self.fixture_up = True
            out = self.fixture_ok("up")
        urls = [l for l in out.splitlines() if l.startswith("http://")]
        if not urls:
            raise AssertionError("upstream.sh up printed no URL:\n%s" % out)
        self.fixture_url = urls[-1].strip()

        self.conf = os.path.join(self.work, "abqd.conf")
        with open(self.conf, "w") as f:
            f.write(self.config_text())
        self.start_abqd()

    def config_text(self):
        return ("; generated by tests/e2e/harness.py\n"
                "[eas]\n"
                "listen = 127.0.0.1:%d\n"
                "workers = 1\n"
                "default_domain = example.test\n"
                "[upstream]\n"
                "url = %s\n"
                "[store]\n"
                "url = sqlite:abqd.db\n"
                "[admin]\n"
                "listen = 127.0.0.1:%d\n"
                "metrics_public = yes\n"
                "[log]\n"
                "level = debug\n" % (self.abqd_port, self.fixture_url, self.admin_port))

    def start_abqd(self):
        self.abqd_log = os.path.join(self.work, "abqd.stderr")
        logf = open(self.abqd_log, "ab")
        env = dict(os.environ)
        env.pop("ABQD_CONFIG", None)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        with Timer("abqd start (until it accepts)"):
            self.abqd = subprocess.Popen(WRAP + [ABQD, "-d", "-c", self.conf], stdout=logf,
                                         stderr=subprocess.STDOUT, cwd=self.work, env=env)
            logf.close()
            deadline = time.monotonic() + (120 if WRAP else 20)
            while True:
                if self.abqd.poll() is not None:
                    raise AssertionError("abqd exited with %d at start:\n%s" % (
                        self.abqd.returncode, self.log_text()))
                try:
                    socket.create_connection(("127.0.0.1", self.abqd_port), timeout=1).close()
                    break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError("abqd does not accept on port %d after %d s:\n%s" % (
                        self.abqd_port, 120 if WRAP else 20, self.log_text()))
                time.sleep(0.05)

    def stop_abqd(self, timeout=20):
        """SIGTERM; returns the exit status (None if it had to be killed)."""
        if self.abqd is None:
            return None
        p, self.abqd = self.abqd, None
        if p.poll() is not None:
            return p.returncode
        p.send_signal(signal.SIGTERM)
        try:
            return p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            return None

    def log_text(self, limit=400000):
        if self.abqd_log is None:
            return "(abqd was not started)"
        try:
            with open(self.abqd_log, "rb") as f:
                data = f.read()
        except OSError:
            return "(no abqd log)"
        if len(data) > limit:
            data = b"[... %d bytes cut ...]\n" % (len(data) - limit) + data[-limit:]
        return data.decode("utf-8", "replace")

    def stop(self):
        self.stop_abqd()
        if self.fixture_up:
            with Timer("fixture down"):
                p = self.fixture("down")
            if p.returncode != 0:
                print("upstream.sh down: rc %d %s%s" % (p.returncode, p.stdout, p.stderr))
            self.fixture_up = False
        if self.failed:
            print("\n===== abqd's log (%s) =====\n%s\n===== end of abqd's log =====" % (
                self.abqd_log, self.log_text()), flush=True)
            sogo = os.path.join(self.fixdir or "/nonexistent", "sogo", "sogod.log")
            if os.path.exists(sogo):
                with open(sogo, "rb") as f:
                    tail = f.read()[-8000:].decode("utf-8", "replace")
                print("===== sogod.log (last 8 KB) =====\n%s" % tail, flush=True)
            if self.work:
                print("work dir kept: %s" % self.work)
        elif self.work:
            shutil.rmtree(self.work, ignore_errors=True)

    # ---- administration

    def ctl(self, *words):
        env = dict(os.environ)
        env.pop("ABQD_CONFIG", None)
        env.pop("SUDO_USER", None)
        return subprocess.run([ABQCTL, "-c", self.conf] + [str(w) for w in words],
                              capture_output=True, text=True, timeout=60, env=env)

    def ctl_json(self, tc, *words):
        p = self.ctl(*(list(words) + ["--json"]))
        tc.assertEqual(p.returncode, 0, "abqctl %s: rc %d: %s" % (" ".join(words), p.returncode,
                                                                    p.stderr))
        try:
            return json.loads(p.stdout)
        except ValueError as e:
            tc.fail("abqctl %s --json: not JSON (%s): %r" % (" ".join(words), e, p.stdout[:300]))

    def abqd_conns(self):
        """abqd's established TCP connections to SOGo: set of (local, peer)."""
        pid = self.abqd.pid
        p = subprocess.run(["ss", "-tnpH", "state", "established",
                            "( dport = :%d )" % self.sogo_port], capture_output=True, text=True)
        if p.returncode != 0:
            raise AssertionError("ss failed: %s" % p.stderr)
        out = set()
        for line in p.stdout.splitlines():
            if "pid=%d," % pid not in line:
                continue
            f = line.split()
            # state filter given: Recv-Q Send-Q Local Peer Process
            out.add((f[2], f[3]))
        return out


# ------------------------------------------------------------------ the base TestCase

class Case(unittest.TestCase):
    """The base of every end-to-end TestCase: setUp checks abqd runs, tearDown
    undoes what a test recorded in self.restore and checks abqd is still alive."""

    maxDiff = None

    def setUp(self):
        self.assertIsNotNone(H.abqd, "abqd is not running")
        self.assertIsNone(H.abqd.poll(), "abqd died (exit %s)" % H.abqd.returncode)
        self.restore = []

    def tearDown(self):
        for words in reversed(self.restore):
            p = H.ctl(*words)
            if p.returncode != 0:
                print("restore: abqctl %s: %s" % (" ".join(words), p.stderr))
        if self.restore:
            time.sleep(1.5)  # the daemon reads the change log once a second
        if H.abqd is not None and H.abqd.poll() is not None:
            self.fail("abqd died during the test (exit %s)" % H.abqd.returncode)

    def admin(self, *words):
        p = H.ctl(*words)
        self.assertEqual(p.returncode, 0, "abqctl %s: rc %d: %s" % (
            " ".join(map(str, words)), p.returncode, p.stderr))
        return p.stdout

    def device_info(self, account, device_id):
        return H.ctl_json(self, "mobile", "getDeviceInfo", account, device_id)

    def until(self, what, fn, limit, step=0.1):
        """Poll fn() until it returns a true value; fail after `limit` seconds."""
        t0 = time.monotonic()
        last = None
        while True:
            last = fn()
            if last and last[0]:
                el = time.monotonic() - t0
                print("  [time] %-55s %6.2f s" % (what, el), flush=True)
                TIMINGS.append((what, el))
                return last
            if time.monotonic() - t0 > limit:
                self.fail("%s: not within %.1f s; last: %r" % (what, limit, last))
            time.sleep(step)

    def mailbox_inbox(self, phone):
        """A quarantined phone's view: FolderSync, Sync 0, GetChanges. Returns
        (inbox id, sync key, [subjects]) and checks the Inbox holds the alert alone."""
        fs = phone.folders(self)
        inbox = [f for f in fs if f[3] == "2"]
        self.assertEqual(len(inbox), 1, "mailbox folders: %r" % fs)
        self.assertTrue(inbox[0][0].startswith("abq-"), "not the quarantine mailbox: %r" % fs)
        coll = inbox[0][0]
        key = phone.sync0(self, coll)
        key, subjects = phone.sync_changes(self, coll, key)
        self.assertEqual(len(subjects), 1, "the Inbox should hold exactly the alert: %r" % subjects)
        return coll, key, subjects

    held_ping = staticmethod(held_ping)

    def quarantined_phone(self, tag, sync=True, **kw):
        """Interactive mode (restored after the test) and a phone in the quarantine
        mailbox: (phone, FolderSync key, [(ServerId, Type)], inbox id, Sync key)
        after a FolderSync 0, then (sync) a Sync 0 and GetChanges until nothing is
        left (else the Sync key is None)."""
        self.admin("config", "global", "set", "attribute", "abqMode", "value", "Interactive")
        self.restore.append(("config", "global", "set", "attribute", "abqMode", "value",
                             "Permissive"))
        time.sleep(1.2)
        phone = Phone(device_id=new_id(tag), **kw)
        fkey, _, ops = folder_changes(self, phone.foldersync(), "quarantine FolderSync 0")
        self.assertTrue(fkey and fkey.startswith("abq-"), "mailbox FolderSync key: %r" % fkey)
        folders = [(sid, t) for op, sid, t in ops if op == "Add"]
        self.assertTrue(folders and all(sid.startswith("abq-") for sid, _ in folders), folders)
        inbox = [sid for sid, t in folders if t == "2"][0]
        if not sync:
            return phone, fkey, folders, inbox, None
        key = phone.sync0(self, inbox)
        key, subjects = phone.sync_changes(self, inbox, key)
        self.assertEqual(len(subjects), 1, "the Inbox should hold exactly the alert: %r" % subjects)
        return phone, fkey, folders, inbox, key

    def side_abqd(self, name, extra_conf, listen_tls=False, domain="example.test", workers=1):
        """Start another abqd on the same fixture with extra config lines ([eas]
        default_domain = domain, none if None); returns (process, port, conf
        path). The caller stops it with stop_side()."""
        work = os.path.join(H.work, name)
        os.makedirs(work, exist_ok=True)
        os.chmod(work, 0o755)
        # Each abqd its own admin port: the default 127.0.0.1:8081 may be taken.
        (port, admin_port) = free_ports(2)
        conf = os.path.join(work, "abqd.conf")
        with open(conf, "w") as f:
            f.write("[eas]\nlisten = %s127.0.0.1:%d\nworkers = %d\n%s"
                    "%s\n[upstream]\nurl = %s\n[store]\nurl = sqlite:abqd.db\n"
                    "[admin]\nlisten = 127.0.0.1:%d\n"
                    "[log]\nlevel = debug\n" % (
                        "tls:" if listen_tls else "", port, workers,
                        "default_domain = %s\n" % domain if domain else "",
                        extra_conf, H.fixture_url, admin_port))
        logf = open(os.path.join(work, "abqd.stderr"), "ab")
        p = subprocess.Popen([ABQD, "-d", "-c", conf], stdout=logf, stderr=subprocess.STDOUT,
                             cwd=work)
        logf.close()

        def accepts():
            if p.poll() is not None:
                with open(os.path.join(work, "abqd.stderr")) as f:
                    self.fail("abqd (%s) exited %d: %s" % (name, p.returncode, f.read()))
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return (True,)
            except OSError as e:
                return (False, str(e))

        self.until("abqd (%s) accepts" % name, accepts, 20)
        return p, port, conf

    @staticmethod
    def stop_side(p):
        p.send_signal(signal.SIGTERM)
        try:
            return p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            return None

    @staticmethod
    def make_cert(d, tag):
        """A self-signed certificate for 127.0.0.1 at d/cert.pem, d/key.pem."""
        p = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                            "-days", "1", "-subj", "/CN=abqd-e2e-%s" % tag,
                            "-addext", "subjectAltName=IP:127.0.0.1",
                            "-keyout", os.path.join(d, "key.pem.new"),
                            "-out", os.path.join(d, "cert.pem.new")],
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise AssertionError("openssl req: %s" % p.stderr)
        os.replace(os.path.join(d, "key.pem.new"), os.path.join(d, "key.pem"))
        os.replace(os.path.join(d, "cert.pem.new"), os.path.join(d, "cert.pem"))
        with open(os.path.join(d, "cert.pem")) as f:
            return f.read()

    def notice_rig(self, name, extra_smtp=""):
        """A real OpenSMTPD on loopback delivering to a Maildir (as test_17) and a
        side abqd with [smtp] pointing at it, in Interactive mode. Returns a
        namespace: relay_start(), relay_stop(), messages(), ctl(), abqd(),
        kill_abqd(), quarantine(device_id), close()."""
        import types
        if not os.path.exists(SMTPD) or os.geteuid() != 0:
            self.fail("needs root and OpenSMTPD at %s (scripts/install-deps.sh)" % SMTPD)
        work = os.path.join(H.work, name + "-relay")
        smtp_port, maildir, smtpd_conf = relay_config(work)
        r = types.SimpleNamespace(relay=None, p=None, port=None, conf=None)

        def relay_up():
            try:
                socket.create_connection(("127.0.0.1", smtp_port), timeout=0.2).close()
                return (True,)
            except OSError as e:
                return (False, str(e))

        def relay_start():
            log = open(os.path.join(work, "smtpd.log"), "ab")
            r.relay = subprocess.Popen([SMTPD, "-d", "-f", smtpd_conf], stdout=log,
                                       stderr=subprocess.STDOUT)
            log.close()
            self.until("smtpd listens", relay_up, 20)

        def relay_stop():
            if r.relay is None:
                return
            stop_process(r.relay)
            r.relay = None
            self.until("smtpd is down", lambda: (not relay_up()[0],), 10)

        def messages():
            return maildir_messages(maildir)

        def ctl(*words):
            c = subprocess.run([ABQCTL, "-c", r.conf] + list(words), capture_output=True,
                               text=True, timeout=30)
            self.assertEqual(c.returncode, 0, "abqctl %s: %s" % (" ".join(words), c.stderr))
            return c.stdout

        def abqd():
            r.p, r.port, r.conf = self.side_abqd(
                name + "-abqd", "[smtp]\nurl = smtp://127.0.0.1:%d\nfrom = abq@example.test\n%s"
                % (smtp_port, extra_smtp))

        def kill_abqd():
            r.p.kill()
            r.p.wait()
            r.p = None

        def quarantine(device_id):
            phone = Phone(device_id=device_id, user="alice", device_type="DigestPhone")
            phone.port = r.port
            info = {"Model": "Pixel " + device_id, "OS": "Android 15", "OSLanguage": "en-US"}
            resp = phone.post("Settings", wbxml(settings_xml(info)))
            self.assertEqual(resp.status, 200, "Settings: %r" % resp)
            d = json.loads(ctl("mobile", "abq", "outbox", "--json"))
            return d

        def close():
            try:
                if r.p is not None:
                    self.assertEqual(self.stop_side(r.p), 0, "the notice abqd's exit status")
            finally:
                relay_stop()

        r.relay_start, r.relay_stop, r.messages, r.ctl = relay_start, relay_stop, messages, ctl
        r.abqd, r.kill_abqd, r.quarantine, r.close = abqd, kill_abqd, quarantine, close
        return r

    def assert_once(self, msgs, expect):
        """Each Message-ID once, and expect of them."""
        ids = [m["Message-ID"] for m in msgs]
        self.assertEqual(len(ids), len(set(ids)), "duplicates: %r" % ids)
        self.assertEqual(len(ids), expect, [m["Subject"] for m in msgs])

    def scrape(self):
        """GET /metrics on the admin listener ([admin] metrics_public = yes):
        ({series: value}, {family: type}), every sample line parsed."""
        conn = http.client.HTTPConnection("127.0.0.1", H.admin_port, timeout=10)
        try:
            conn.request("GET", "/metrics")
            r = conn.getresponse()
            body = r.read().decode("utf-8")
            self.assertEqual(r.status, 200, "GET /metrics: %d %r" % (r.status, body[:300]))
            self.assertTrue(r.getheader("Content-Type", "").startswith("text/plain"),
                            "GET /metrics: Content-Type %r" % r.getheader("Content-Type"))
        finally:
            conn.close()
        series, types = {}, {}
        for line in body.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(" ")
                types[name] = kind
            elif line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                self.assertNotIn(key, series, "series %s twice" % key)
                series[key] = float(value)
        return series, types

    @staticmethod
    def moved(before, after, prefix):
        """The series under prefix whose value changed, with the change."""
        keys = set(before) | set(after)
        return {k: after.get(k, 0) - before.get(k, 0) for k in keys
                if k.startswith(prefix) and after.get(k, 0) != before.get(k, 0)}

    def healthz(self):
        conn = http.client.HTTPConnection("127.0.0.1", H.admin_port, timeout=10)
        try:
            conn.request("GET", "/healthz")
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()


def run_suite(name, harness, tests=None, add_args=None, before_start=None, after_start=None,
              at_end=None):
    """The main() of every end-to-end suite (this file's and those that import it).

    Reads --abqd, --abqctl and --smtpd (and what add_args(parser) adds), makes
    `harness` this run's H, starts it (before_start(args) runs first, after_start()
    once the fixture and abqd are up), runs the tests (the TestCase class `tests`,
    or a list of them in that order, or every test of the __main__ module; other
    arguments select tests as
    unittest's do) and, when they passed, at_end(), which returns False to fail the
    run. Then it stops everything, prints the timings and "NAME: PASS|FAIL in N s",
    and exits 0 or 1. SIGTERM (CTest's timeout) interrupts it like Ctrl-C, so the
    fixture is always stopped."""
    global ABQD, ABQCTL, H, SMTPD
    ap = argparse.ArgumentParser()
    ap.add_argument("--abqd", required=True)
    ap.add_argument("--abqctl", required=True)
    ap.add_argument("--smtpd", default=SMTPD)
    if add_args is not None:
        add_args(ap)
    args, rest = ap.parse_known_args()
    SMTPD = args.smtpd
    ABQD = os.path.abspath(args.abqd)
    ABQCTL = os.path.abspath(args.abqctl)

    def on_term(sig, frame):
        raise KeyboardInterrupt("signal %d" % sig)
    signal.signal(signal.SIGTERM, on_term)

    t0 = time.monotonic()
    H = harness
    ok = False
    try:
        if before_start is not None:
            before_start(args)
        H.start()
        if after_start is not None:
            after_start()
        if tests is None:
            prog = unittest.main(argv=[sys.argv[0]] + rest, verbosity=2, exit=False)
            result = prog.result
        else:
            classes = tests if isinstance(tests, (list, tuple)) else [tests]
            suite = unittest.TestSuite(
                t for c in classes for t in unittest.TestLoader().loadTestsFromTestCase(c))
            if rest:
                suite = unittest.TestSuite(t for t in suite if any(
                    r.split(".")[-1] == t._testMethodName for r in rest))
            result = unittest.TextTestRunner(verbosity=2).run(suite)
        ok = result.wasSuccessful() and result.testsRun > 0
        if ok and at_end is not None:
            ok = at_end() is not False
    except BaseException as e:  # setup failed, or interrupted
        print("FAIL  %s: %s" % (type(e).__name__, e), file=sys.stderr, flush=True)
    finally:
        H.failed = not ok
        H.stop()
    print("\ntimings:")
    for label, el in TIMINGS:
        print("  %-58s %6.2f s" % (label, el))
    print("%s: %s in %.1f s" % (name, "PASS" if ok else "FAIL", time.monotonic() - t0),
          flush=True)
    sys.exit(0 if ok else 1)


def sigterm_clean_exit():
    """Stop abqd with SIGTERM; False (with the reason printed) unless it exits 0
    with no sanitizer report in its log. For run_suite's at_end."""
    rc = H.stop_abqd()
    log = H.log_text(limit=10 ** 9)
    bad = [b for b in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
           if b in log]
    if rc != 0 or bad:
        print("FAIL  abqd exit %r after SIGTERM, sanitizer reports %r" % (rc, bad), flush=True)
        return False
    return True
