#!/usr/bin/env python3
"""End to end: abqd in front of a real ActiveSync upstream, driven as a phone is.

Run by CTest as:  python3 test_e2e.py --abqd PATH --abqctl PATH [unittest args]

The run is self-contained: it installs what the fixture needs
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
administrator sees; a missing tool is a failure, never a skip.

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
             "X-MS-PolicyKey": "0"}
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
    import email
    import email.policy
    out = []
    for sub in ("new", "cur"):
        d = os.path.join(maildir, sub)
        if os.path.isdir(d):
            for n in sorted(os.listdir(d)):
                with open(os.path.join(d, n), "rb") as f:
                    out.append(email.message_from_bytes(f.read(), policy=email.policy.default))
    return out


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
        return ("; generated by tests/e2e/test_e2e.py\n"
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


# ------------------------------------------------------------------ the tests

class E2E(unittest.TestCase):
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

    # 1 ---------------------------------------------------------------
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

    # 2 ---------------------------------------------------------------
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
        H.fixture_ok("deliver", "alice", subject)
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

    # 3 ---------------------------------------------------------------
    def test_03_phone_gone_mid_ping_frees_the_upstream_connection(self):
        phone = Phone(device_id=new_id("gone"))
        inbox = phone.inbox(self)
        key = phone.sync0(self, inbox)
        key, _ = phone.sync_changes(self, inbox, key)
        phone.sync_changes(self, inbox, key)

        before = H.abqd_conns()
        s = socket.create_connection(("127.0.0.1", H.abqd_port), timeout=10)
        try:
            s.sendall(phone.raw_request("Ping", wbxml(ping_xml(inbox, 25))))
            # The held Ping: an upstream connection more (or a pooled one taken).
            held = None
            t0 = time.monotonic()
            while time.monotonic() - t0 < 5:
                during = H.abqd_conns()
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
            now = H.abqd_conns()
            return (not (held & now), now)
        self.until("upstream connection closed after the phone left", gone, 2.0, 0.05)
        self.assertLess(len(H.abqd_conns()), len(during))
        self.assertLess(time.monotonic() - t_close, 3)

    # 4 ---------------------------------------------------------------
    def test_04_blocked_device(self):
        phone = Phone(device_id=new_id("blk"))
        phone.folders(self)
        self.admin("mobile", "abq", "block", phone.device_id)

        def blocked():
            r = phone.foldersync()
            return (r.status == 200 and r.body and text_of(r.doc(), "Status") == "129", r)
        _, r = self.until("block seen by abqd", blocked, 2.5, 0.1)
        assert_status_doc(self, r, "FolderSync", 129, "blocked FolderSync at 14.1")
        r = phone.foldersync(version="16.1")
        assert_status_doc(self, r, "FolderSync", 129, "blocked FolderSync at 16.1")
        r = phone.foldersync(version="12.1")
        self.assertEqual(r.status, 403, "blocked FolderSync at 12.1: %r" % r)
        d = self.device_info("alice", phone.device_id)
        self.assertEqual((d["device"]["state"], d["device"]["reason"]), ("Blocked", "Individual"))
        self.assertEqual([(e["deviceId"], e["state"]) for e in d["entries"]],
                         [(phone.device_id, "Blocked")])

    def test_04a_block_ends_a_held_ping(self):
        """product.md: a Ping held by a device that becomes blocked is answered within 2 s."""
        phone = Phone(device_id=new_id("blkping"))
        inbox = phone.inbox(self)
        key = phone.sync0(self, inbox)
        key, _ = phone.sync_changes(self, inbox, key)
        phone.sync_changes(self, inbox, key)
        th, result = held_ping(phone, inbox, 25, timeout=60)
        time.sleep(1.0)
        self.assertTrue(th.is_alive(), "Ping not held: %r" % result)
        t_block = time.monotonic()
        self.admin("mobile", "abq", "block", phone.device_id, "account", "alice")
        th.join(10)
        self.assertFalse(th.is_alive(), "the held Ping is still held 10 s after the block")
        self.assertNotIn("error", result, "Ping failed: %r" % result.get("error"))
        el = result["t"] - t_block
        print("  [time] %-55s %6.2f s" % ("held Ping answered after the block", el))
        TIMINGS.append(("held Ping answered after the block", el))
        self.assertLess(el, 2.5, "the held Ping was answered %.1f s after the block" % el)
        assert_status_doc(self, result["resp"], "Ping", 129, "held Ping of a blocked device")

    def test_04b_device_limit(self):
        first = Phone(device_id=new_id("lim1"), user="bob")
        first.folders(self)
        self.admin("config", "global", "set", "attribute", "abqMaxDevicesPerAccount", "value", "1")
        self.restore.append(("config", "global", "delete", "attribute", "abqMaxDevicesPerAccount"))
        second = Phone(device_id=new_id("lim2"), user="bob")
        r = second.foldersync()
        assert_status_doc(self, r, "FolderSync", 177, "second device beyond the limit")
        d = self.device_info("bob", second.device_id)["device"]
        self.assertEqual((d["state"], d["reason"]), ("Blocked", "Limit"))

    # 5 ---------------------------------------------------------------
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

    def test_05_the_story(self):
        """issue 4: Interactive; an iPhone (16.1) and an Android (14.1) land in the
        quarantine mailbox; allow one, block the other while both hold a Ping."""
        self.admin("config", "global", "set", "attribute", "abqMode", "value", "Interactive")
        self.restore.append(("config", "global", "set", "attribute", "abqMode", "value",
                             "Permissive"))
        iphone = Phone(device_id=new_id("ceoiphone"), user="alice", version="16.1",
                       device_type="iPhone")
        android = Phone(device_id=new_id("mgrandroid"), user="bob", version="14.1",
                        device_type="Android")
        boxes = {}
        for ph in (iphone, android):
            coll, key, subjects = self.mailbox_inbox(ph)
            self.assertRegex(subjects[0], r"(?i)has been put in quarantine", subjects)
            doc = H.ctl_json(self, "mobile", "abq", "list", "status", "Quarantined")
            self.assertIn(ph.device_id.upper(), [d["deviceId"].upper() for d in doc["devices"]])
            boxes[ph.device_id] = (coll, key)
        # 12.1 gets the mailbox too.
        old = Phone(device_id=new_id("old"), user="bob", version="12.1")
        self.assertTrue(old.folders(self)[0][0].startswith("abq-"))

        ip_th, ip_res = self.held_ping(iphone, boxes[iphone.device_id][0], 120)
        an_th, an_res = self.held_ping(android, boxes[android.device_id][0], 120)
        time.sleep(1.5)
        self.assertTrue(ip_th.is_alive(), "iPhone Ping not held: %r" % ip_res)
        self.assertTrue(an_th.is_alive(), "Android Ping not held: %r" % an_res)
        t0 = time.monotonic()
        self.admin("mobile", "abq", "allow", iphone.device_id)
        self.admin("mobile", "abq", "block", android.device_id)
        ip_th.join(10)
        an_th.join(10)
        self.assertFalse(ip_th.is_alive() or an_th.is_alive(), "Pings still held after 10 s")
        for what, res in (("iPhone", ip_res), ("Android", an_res)):
            self.assertNotIn("error", res, "%s Ping: %r" % (what, res.get("error")))
            el = res["t"] - t0
            print("  [time] %-55s %6.2f s" % ("%s held Ping answered after abqctl" % what, el))
            TIMINGS.append(("%s held Ping answered after abqctl" % what, el))
            self.assertLess(el, 2.5, "%s Ping answered %.1f s after the change" % (what, el))
        assert_status_doc(self, ip_res["resp"], "Ping", 7, "allowed iPhone's held Ping")
        assert_status_doc(self, an_res["resp"], "Ping", 129, "blocked Android's held Ping")
        # The iPhone's old mailbox key: start over; then the real folders and mail.
        r = iphone.post("Sync", wbxml(sync_xml(boxes[iphone.device_id][0],
                                                boxes[iphone.device_id][1], True)))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(text_of(r.doc(), ".//Status"), "3", "Sync with a mailbox key: %r" % r)
        fs = iphone.folders(self)
        self.assertFalse(any(f[0].startswith("abq-") for f in fs), fs)
        real_inbox = [f for f in fs if f[3] == "2"][0][0]
        key = iphone.sync0(self, real_inbox)
        _, subjects = iphone.sync_changes(self, real_inbox, key)
        self.assertTrue(subjects, "the allowed iPhone sees no mail")
        self.assertFalse(any("approv" in x.lower() for x in subjects), subjects)
        assert_status_doc(self, android.foldersync(), "FolderSync", 129, "blocked Android")

        # Strict: a third device is blocked at its first request.
        self.admin("config", "global", "set", "attribute", "abqMode", "value", "Strict")
        time.sleep(1.5)
        third = Phone(device_id=new_id("third"), user="bob")
        assert_status_doc(self, third.foldersync(), "FolderSync", 129, "new device in Strict")
        # delete: decided anew (now by the mode, no longer the administrator's entry).
        self.admin("mobile", "abq", "delete", android.device_id)
        time.sleep(1.5)
        assert_status_doc(self, android.foldersync(), "FolderSync", 129, "deleted, Strict")
        d = self.device_info("bob", android.device_id)["device"]
        self.assertEqual((d["state"], d["reason"]), ("Blocked", "Mode"))

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

    def test_05c_allowed_phone_gets_its_real_folders(self):
        """issue 20: a quarantined phone holding a Ping is allowed: the Ping gets 7,
        its FolderSync with the mailbox's key gets the real folders (Status 1, the
        quarantine folders deleted, the real ones added) and a SyncKey the upstream
        takes; never a FolderSync 9, which makes iOS and Android drop the account."""
        phone, fkey, qfolders, qinbox, _ = self.quarantined_phone(
            "handover", version="16.1", device_type="iPhone")
        th, res = self.held_ping(phone, qinbox, 120)
        time.sleep(1.5)
        self.assertTrue(th.is_alive(), "Ping not held: %r" % res)
        t0 = time.monotonic()
        self.admin("mobile", "abq", "allow", phone.device_id)
        th.join(10)
        self.assertFalse(th.is_alive(), "Ping still held 10 s after the allow")
        self.assertNotIn("error", res, "Ping: %r" % res.get("error"))
        self.assertLess(res["t"] - t0, 2.5, "Ping answered %.1f s after the allow" % (
            res["t"] - t0))
        assert_status_doc(self, res["resp"], "Ping", 7, "allowed phone's held Ping")

        # Its next FolderSync, with the mailbox's key, as phones send it.
        with Timer("handover FolderSync (abqd asks the upstream)"):
            r = phone.post("FolderSync", wbxml(foldersync_xml(fkey)))
        key, count, ops = folder_changes(self, r, "FolderSync with the mailbox's key")
        print("  handover: key %s, Count %s, %s" % (key, count, ", ".join(
            "%s %s" % (op, sid) for op, sid, _ in ops)))
        self.assertTrue(key and key != "0" and not key.startswith("abq-"),
                        "not the upstream's SyncKey: %r" % key)
        deletes = [sid for op, sid, _ in ops if op == "Delete"]
        adds = [(sid, t) for op, sid, t in ops if op == "Add"]
        self.assertEqual(sorted(deletes), sorted(sid for sid, _ in qfolders),
                         "not every quarantine folder deleted: %r" % ops)
        self.assertEqual(count, str(len(ops)), "Count is not the number of changes: %r" % ops)
        self.assertFalse(any(sid.startswith("abq-") for sid, _ in adds), adds)
        real_inbox = [sid for sid, t in adds if t == "2"]
        self.assertEqual(len(real_inbox), 1, "not exactly one real Inbox added: %r" % adds)
        # The same folders SOGo gives a FolderSync 0 of this phone's own.
        direct = Phone(device_id=new_id("hodirect"), direct=True, version="16.1")
        self.assertEqual(sorted(adds), sorted((f[0], f[3]) for f in direct.folders(self)))

        # The upstream's key goes on: a further FolderSync reaches SOGo, Status 1.
        key2, _, ops2 = folder_changes(self, phone.post("FolderSync", wbxml(foldersync_xml(key))),
                                       "FolderSync with the handed-over key")
        self.assertFalse(any(op == "Add" for op, _, _ in ops2), "folders added twice: %r" % ops2)
        self.assertFalse(key2.startswith("abq-"), key2)
        # And the real mail.
        skey = phone.sync0(self, real_inbox[0])
        _, subjects = phone.sync_changes(self, real_inbox[0], skey)
        for subj in ALICE_SEEDED:
            self.assertIn(subj, subjects, "the allowed phone does not see its mail")
        self.assertFalse(any("approv" in x.lower() for x in subjects), subjects)
        self.assertRegex(H.log_text(), r"dev=%s cmd=FolderSync .*outcome=handover "
                         r"upstream=200 status=200" % phone.device_id)

    # The held cases of issue 20, as a quarantined phone meets them.
    def test_05d_hanging_sync_held_and_ended_by_an_allow(self):
        """A hanging Sync (Wait) with the current key and nothing changed is held
        like a Ping (MS-ASCMD 2.2.3.198); the allow ends it at once with the Sync
        start-over (Status 3 for the collection)."""
        phone, _, _, inbox, key = self.quarantined_phone("hang", version="14.1")
        result = {}

        def sync():
            try:
                result["resp"] = phone.post("Sync", wbxml(hanging_sync_xml(inbox, key, 1)),
                                            timeout=90)
            except Exception as e:  # noqa: BLE001 - reported below
                result["error"] = e
            result["t"] = time.monotonic()

        th = threading.Thread(target=sync, daemon=True)
        th.start()
        time.sleep(1.5)
        self.assertTrue(th.is_alive(), "the hanging Sync was answered at once: %r" % result)
        t0 = time.monotonic()
        self.admin("mobile", "abq", "allow", phone.device_id)
        th.join(10)
        self.assertFalse(th.is_alive(), "the hanging Sync is still held 10 s after the allow")
        self.assertNotIn("error", result, "hanging Sync: %r" % result.get("error"))
        el = result["t"] - t0
        print("  [time] %-55s %6.2f s" % ("held Sync answered after the allow", el))
        TIMINGS.append(("held Sync answered after the allow", el))
        self.assertLess(el, 2.5, "the held Sync was answered %.1f s after the allow" % el)
        r = result["resp"]
        self.assertEqual(r.status, 200, r)
        c = r.doc().find(".//Collection")
        self.assertIsNotNone(c, "no Collection in the answer: %r" % r)
        self.assertEqual(text_of(c, "CollectionId"), inbox, r)
        self.assertEqual(text_of(c, "Status"), "3", "not the start-over answer: %r" % r)

    def test_05e_retried_sync_key_is_answered_again(self):
        """A phone whose Sync answer was lost resends the request with the same key
        (MS-ASCMD 3.1.5.9): the same answer again, Status 1, never 3."""
        phone, _, _, inbox, _ = self.quarantined_phone("retry", sync=False)
        k1 = phone.sync0(self, inbox)
        first = phone.post("Sync", wbxml(sync_xml(inbox, k1, True)))
        c1 = first.doc().find(".//Collection")
        self.assertEqual(text_of(c1, "Status"), "1", first)
        k2 = text_of(c1, "SyncKey")
        adds1 = [text_of(a, "ServerId") for a in c1.iter("Add")]
        self.assertEqual(len(adds1), 1, "the alert: %r" % first)
        # That answer was lost on the way: the phone sends the same request again.
        again = phone.post("Sync", wbxml(sync_xml(inbox, k1, True)))
        self.assertEqual(again.status, 200, again)
        c2 = again.doc().find(".//Collection")
        self.assertIsNotNone(c2, "retry: no Collection: %r" % again)
        self.assertEqual(text_of(c2, "Status"), "1", "retried key refused: %r" % again)
        self.assertEqual([text_of(a, "ServerId") for a in c2.iter("Add")], adds1,
                         "the retry is not answered with the same changes: %r" % again)
        k3 = text_of(c2, "SyncKey")
        # The key of the repeated answer works (the same key, or one that goes on).
        r = phone.post("Sync", wbxml(sync_xml(inbox, k3, True)))
        self.assertEqual(r.status, 200, r)
        if r.body:
            self.assertEqual(text_of(r.doc().find(".//Collection"), "Status"), "1",
                             "the key of the repeated answer (%s, first %s): %r" % (k3, k2, r))

    def test_05f_repeated_foldersync_key(self):
        """The same FolderSync twice (a lost answer, or nothing changed): Status 1
        both times, never 9."""
        phone, fkey = self.quarantined_phone("fsrep", sync=False)[:2]
        answers = []
        for n in (1, 2):
            key, _, ops = folder_changes(self, phone.post("FolderSync", wbxml(foldersync_xml(
                fkey))), "FolderSync %d with the same key" % n)
            answers.append((key, ops))
        self.assertTrue(answers[1][0], answers)
        r = phone.post("FolderSync", wbxml(foldersync_xml(answers[1][0])))
        folder_changes(self, r, "FolderSync with the key of the repeated answer")

    def test_05b_restart_between_foldersync_and_sync(self):
        """A quarantined phone's sync survives an abqd restart in the middle."""
        self.admin("config", "global", "set", "attribute", "abqMode", "value", "Interactive")
        self.restore.append(("config", "global", "set", "attribute", "abqMode", "value",
                             "Permissive"))
        phone = Phone(device_id=new_id("restart"))
        fs = phone.folders(self)
        coll = [f for f in fs if f[3] == "2"][0][0]
        key = phone.sync0(self, coll)
        self.assertIsNotNone(H.stop_abqd(), "abqd did not stop")
        H.start_abqd()
        key, subjects = phone.sync_changes(self, coll, key)
        self.assertEqual(len(subjects), 1, "after the restart: %r" % subjects)

    # 6 ---------------------------------------------------------------
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

    # 7 ---------------------------------------------------------------
    def test_07_wrong_password_leaves_no_trace(self):
        phone = Phone(device_id=new_id("badpw"))
        r = phone.post("FolderSync", FOLDERSYNC_0, password="not-the-password")
        self.assertEqual(r.status, 401, "wrong password: %r" % r)
        self.assertRegex(r.headers.get("www-authenticate", ""), r"^Basic( |$)")
        r = phone.post("FolderSync", FOLDERSYNC_0, auth=False)
        self.assertEqual(r.status, 401, "no credentials: %r" % r)
        self.assertRegex(r.headers.get("www-authenticate", ""), r"^Basic( |$)")
        devs = H.ctl_json(self, "mobile", "getAllDevices")["devices"]
        self.assertTrue(devs, "getAllDevices lists nothing at all (other tests made devices)")
        self.assertEqual([d for d in devs if d["deviceId"].lower() == phone.device_id.lower()],
                         [])
        hist = H.ctl_json(self, "mobile", "abq", "history")["history"]
        self.assertEqual([e for e in hist if phone.device_id.lower() in json.dumps(e).lower()], [])

    # 8 ---------------------------------------------------------------
    def test_08_settings_device_information(self):
        phone = Phone(device_id=new_id("info"), user_agent="abqd-e2e-header/2.0")
        info = {"Model": "Pixel 8 Pro", "IMEI": "356938035643809", "FriendlyName": "Alice's phone",
                "OS": "Android 14.0.0", "OSLanguage": "English", "UserAgent": "Android-Mail/2024.11"}
        r = phone.post("Settings", wbxml(settings_xml(info)))
        self.assertEqual(r.status, 200, "Settings: %r" % r)
        doc = r.doc()
        self.assertEqual(doc.tag, "Settings")
        d = self.device_info("alice", phone.device_id)["device"]
        got = {"Model": d["model"], "IMEI": d["imei"], "FriendlyName": d["friendlyName"],
               "OS": d["os"], "OSLanguage": d["osLanguage"], "UserAgent": d["userAgent"]}
        self.assertEqual(got, info)
        self.assertEqual(d["lastCommand"], "Settings")

    def test_08b_discovery(self):
        """A rule on the model: a new phone that has not said its model is in
        Discovery and sees the mailbox's neutral alert; its Settings decide it."""
        self.admin("mobile", "abq", "setRule", "SM-*", "Blocked", "10", "characteristic",
                   "DeviceModel", "match", "glob")
        self.restore.append(("mobile", "abq", "deleteRule", "SM-*"))
        time.sleep(1.2)
        samsung = Phone(device_id=new_id("disc"), user="bob", device_type="Android")
        _, _, subjects = self.mailbox_inbox(samsung)
        self.assertRegex(subjects[0], r"(?i)checking", subjects)
        d = self.device_info("bob", samsung.device_id)["device"]
        self.assertEqual(d["state"], "Discovery")
        r = samsung.post("Settings", wbxml(settings_xml({"Model": "SM-S918B", "OS": "Android 14"})))
        assert_status_doc(self, r, "Settings", 129, "Settings that reveal a blocked model")
        d = self.device_info("bob", samsung.device_id)["device"]
        self.assertEqual((d["state"], d["reason"], d["model"]), ("Blocked", "Rule", "SM-S918B"))
        pixel = Phone(device_id=new_id("disc2"), user="bob", device_type="Android")
        pcoll, pkey, _ = self.mailbox_inbox(pixel)
        r = pixel.post("Settings", wbxml(settings_xml({"Model": "Pixel 8", "OS": "Android 14"})))
        self.assertEqual(r.status, 200, "Settings of an allowed model: %r" % r)
        d = self.device_info("bob", pixel.device_id)["device"]
        self.assertEqual((d["state"], d["reason"]), ("Allowed", "Mode"))
        # Its mailbox keys now get "start over", then the real folders.
        r = pixel.post("Sync", wbxml(sync_xml(pcoll, pkey, True)))
        self.assertEqual(text_of(r.doc(), ".//Status"), "3", "mailbox key after the decision: %r" % r)
        self.assertFalse(any(f[0].startswith("abq-") for f in pixel.folders(self)))

    # 9 is test_90 (it restarts the fixture, so it runs last)

    # 10 --------------------------------------------------------------
    def test_10_malformed_requests(self):
        phone = Phone(device_id=new_id("bad"))

        def served():
            self.assertEqual(phone.folders(self)[0][0] is not None, True)

        # A garbage request line over a raw socket.
        s = socket.create_connection(("127.0.0.1", H.abqd_port), timeout=10)
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

    # 11 --------------------------------------------------------------
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

    # 12 --------------------------------------------------------------
    def test_12_config_check(self):
        p = subprocess.run([ABQD, "-n", "-c", H.conf], capture_output=True, text=True, timeout=30)
        self.assertEqual((p.returncode, p.stdout.strip()), (0, "configuration OK"), p.stderr)
        lines = H.config_text().splitlines()
        lines.insert(3, "listne = 127.0.0.1:1")  # line 4, in [eas]
        bad = os.path.join(H.work, "bad.conf")
        with open(bad, "w") as f:
            f.write("\n".join(lines) + "\n")
        p = subprocess.run([ABQD, "-n", "-c", bad], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1, "bad config: rc %d %s" % (p.returncode, p.stderr))
        self.assertNotIn("configuration OK", p.stdout)
        self.assertRegex(p.stderr, r"bad\.conf:4: .*listne", p.stderr)

    # 13 --------------------------------------------------------------
    def test_13_imap_authentication(self):
        """[auth] method = imap://: a second abqd checks passwords against the
        fixture's real Dovecot: a good one syncs, a wrong one gets 401 and leaves
        no trace."""
        work = os.path.join(H.work, "imap-abqd")
        os.makedirs(work, exist_ok=True)
        (port, admin_port) = free_ports(2)
        conf = os.path.join(work, "abqd.conf")
        with open(conf, "w") as f:
            f.write("[eas]\nlisten = 127.0.0.1:%d\nworkers = 1\ndefault_domain = example.test\n"
                    "[upstream]\nurl = %s\n[auth]\nmethod = imap://127.0.0.1:%d\n"
                    "[store]\nurl = sqlite:abqd.db\n[admin]\nlisten = 127.0.0.1:%d\n"
                    "[log]\nlevel = debug\n"
                    % (port, H.fixture_url, H.imap_port, admin_port))
        logf = open(os.path.join(work, "abqd.stderr"), "ab")
        p = subprocess.Popen([ABQD, "-d", "-c", conf], stdout=logf, stderr=subprocess.STDOUT,
                             cwd=work)
        logf.close()
        def accepts():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return (True,)
            except OSError as e:
                return (False, str(e))

        try:
            self.until("the IMAP-auth abqd accepts", accepts, 20)
            good = Phone(device_id=new_id("imap"), user="bob")
            good.port = port
            self.assertIn("2", [f[3] for f in good.folders(self)])
            bad = Phone(device_id=new_id("imapbad"), user="bob", password="wrong")
            bad.port = port
            with Timer("IMAP login refused (Dovecot delays failures)"):
                r = bad.foldersync()
            self.assertEqual(r.status, 401, "wrong password via IMAP: %r" % r)
            self.assertIn("basic", r.headers.get("www-authenticate", "").lower())
            out = subprocess.run([ABQCTL, "-c", conf, "mobile", "getAllDevices", "--json"],
                                 capture_output=True, text=True, timeout=30)
            self.assertEqual(out.returncode, 0, out.stderr)
            ids = [d["deviceId"] for d in json.loads(out.stdout)["devices"]]
            self.assertIn(good.device_id.upper(), [i.upper() for i in ids])
            self.assertNotIn(bad.device_id.upper(), [i.upper() for i in ids])
        finally:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

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
        self.assertNotIn("default_domain is set", H.log_text())

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

    # 14 --------------------------------------------------------------
    def test_14_tls_and_certificate_reload(self):
        """TLS listener; SIGHUP loads a new certificate for new connections while a
        Ping held over TLS with the old one goes on and is answered."""
        import ssl
        d = os.path.join(H.work, "tls-certs")
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
            H.fixture_ok("deliver", "alice", "after the reload %s" % uuid.uuid4().hex[:6])
            th.join(30)
            self.assertFalse(th.is_alive(), "held Ping not answered after the delivery")
            self.assertNotIn("error", result, "held Ping failed: %r" % result.get("error"))
            self.assertEqual(result["resp"].status, 200, "held Ping: %r" % result["resp"])
            self.assertEqual(text_of(result["resp"].doc(), "Status"), "2")
        finally:
            self.assertEqual(self.stop_side(p), 0, "TLS abqd exit status")

    # 15 --------------------------------------------------------------
    def test_15_drops_privileges_after_binding(self):
        """[eas] user: abqd binds and opens its store as root, then runs as that user
        and still records devices."""
        p, port, conf = self.side_abqd("user-abqd", "user = nobody")
        try:
            with open("/proc/%d/status" % p.pid) as f:
                uids = [l.split()[1:] for l in f if l.startswith("Uid:")][0]
            import pwd
            nobody = str(pwd.getpwnam("nobody").pw_uid)
            self.assertEqual(uids, [nobody] * 4, "real/effective/saved/fs uid")
            phone = Phone(device_id=new_id("priv"))
            phone.port = port
            self.assertTrue(phone.folders(self))
            out = subprocess.run([ABQCTL, "-c", conf, "mobile", "getAllDevices", "--json"],
                                 capture_output=True, text=True, timeout=30)
            self.assertEqual(out.returncode, 0, out.stderr)
            ids = [x["deviceId"].upper() for x in json.loads(out.stdout)["devices"]]
            self.assertIn(phone.device_id.upper(), ids)
        finally:
            self.assertEqual(self.stop_side(p), 0, "abqd (user nobody) exit status")

    # 16 --------------------------------------------------------------
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
        self.assertEqual(H.ctl("mobile", "abq", "history").stdout.count("autodiscover"), 0)

    # 9 ---------------------------------------------------------------
    # 17 --------------------------------------------------------------
    def test_17_user_notices_by_mail(self):
        """A real OpenSMTPD on loopback (as tests/notice/test_notice_smtp.py runs
        it) and a side abqd with [smtp] from: alice's new device in Interactive
        mode brings alice@example.test the quarantine mail naming the device;
        abqctl block brings the blocked mail; the outbox shows both sent."""
        if not os.path.exists(SMTPD) or os.geteuid() != 0:
            self.fail("needs root and OpenSMTPD at %s (scripts/install-deps.sh)" % SMTPD)
        work = os.path.join(H.work, "notice-relay")
        smtp_port, maildir, smtpd_conf = relay_config(work)
        relay_log = open(os.path.join(work, "smtpd.log"), "ab")
        relay = subprocess.Popen([SMTPD, "-d", "-f", smtpd_conf], stdout=relay_log,
                                 stderr=subprocess.STDOUT)
        relay_log.close()

        def messages():
            return maildir_messages(maildir)

        def relay_up():
            try:
                socket.create_connection(("127.0.0.1", smtp_port), timeout=0.2).close()
                return (True,)
            except OSError as e:
                return (False, str(e))

        p = None
        try:
            self.until("smtpd listens", relay_up, 20)
            p, port, conf = self.side_abqd(
                "notice-abqd", "[smtp]\nurl = smtp://127.0.0.1:%d\nfrom = abq@example.test\n"
                % smtp_port)

            def ctl(*words):
                r = subprocess.run([ABQCTL, "-c", conf] + list(words), capture_output=True,
                                   text=True, timeout=30)
                self.assertEqual(r.returncode, 0, "abqctl %s: %s" % (" ".join(words), r.stderr))
                return r.stdout
            ctl("config", "global", "set", "attribute", "abqMode", "value", "Interactive")
            phone = Phone(device_id=new_id("mail"), user="alice", device_type="NoticePhone")
            phone.port = port
            info = {"Model": "Pixel Notice", "OS": "Android 15", "OSLanguage": "en-US"}
            r = phone.post("Settings", wbxml(settings_xml(info)))
            self.assertEqual(r.status, 200, "Settings: %r" % r)

            def subjects():
                m = messages()
                return (len(m) >= 1, [x["Subject"] for x in m])
            self.until("the quarantine mail arrives", subjects, 15)
            msgs = messages()
            self.assertEqual(len(msgs), 1, [m["Subject"] for m in msgs])
            m = msgs[0]
            self.assertEqual(m["To"], "alice@example.test")
            self.assertIn("abq@example.test", m["From"])
            self.assertEqual(m["Auto-Submitted"], "auto-generated")
            self.assertIn(phone.device_id, m["Subject"])
            plain = m.get_body(("plain",)).get_content()
            for fact in ("Pixel Notice", "NoticePhone", phone.device_id, "Android 15",
                         "Quarantined"):
                self.assertIn(fact, plain)

            ctl("mobile", "abq", "block", phone.device_id, "account", "alice")

            def two():
                m = messages()
                return (len(m) >= 2, [x["Subject"] for x in m])
            self.until("the blocked mail arrives", two, 15)
            time.sleep(1.5)  # nothing more comes
            msgs = messages()
            self.assertEqual(len(msgs), 2, [m["Subject"] for m in msgs])
            blocked = [m for m in msgs if "blocked" in m["Subject"]]
            self.assertEqual(len(blocked), 1, [m["Subject"] for m in msgs])
            self.assertIn("Pixel Notice", blocked[0].get_body(("plain",)).get_content())

            def all_sent():
                doc = json.loads(ctl("mobile", "abq", "outbox", "--json"))
                n = doc["notices"]
                return (len(n) == 2 and all(x["state"] == "sent" for x in n), n)
            _, notices = self.until("the outbox shows both sent", all_sent, 10)
            self.assertEqual([(x["kind"], x["recipient"], x["deviceId"]) for x in notices],
                             [("user-quarantined", "alice@example.test", phone.device_id),
                              ("user-blocked", "alice@example.test", phone.device_id)])
        finally:
            if p is not None:
                self.assertEqual(self.stop_side(p), 0, "the notice abqd's exit status")
            stop_process(relay)

    # 18 --------------------------------------------------------------
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

    def test_18_admin_digest(self):
        """[smtp] admins = it@example.test, abqNotificationsInterval 5s: two new
        devices quarantined bring one digest naming both with the abqctl lines;
        the next interval with nothing new brings no second digest."""
        r = self.notice_rig("digest", "admins = it@example.test\n")
        try:
            r.relay_start()
            r.abqd()
            r.ctl("config", "global", "set", "attribute", "abqMode", "value", "Interactive")
            ids = [new_id("dig1"), new_id("dig2")]
            for i in ids:
                r.quarantine(i)
            # After both (the default 1h interval holds them): the sender sees the
            # change within a scan and the first digest covers both.
            r.ctl("mobile", "abq", "setNotificationInterval", "5s")

            def digests():
                m = [x for x in r.messages() if x["To"] == "it@example.test"]
                return (len(m) >= 1, [x["Subject"] for x in m])
            self.until("the digest arrives", digests, 20)
            time.sleep(1)
            dig = [x for x in r.messages() if x["To"] == "it@example.test"]
            self.assertEqual(len(dig), 1, [x["Subject"] for x in dig])
            plain = dig[0].get_body(("plain",)).get_content()
            for i in ids:
                self.assertIn("abqctl mobile abq allow %s account alice" % i, plain)
                self.assertIn("abqctl mobile abq block %s account alice" % i, plain)
                self.assertIn("Pixel " + i, plain)
            self.assertEqual(dig[0]["Auto-Submitted"], "auto-generated")
            # Two more intervals with nothing new: no second digest.
            time.sleep(12)
            dig = [x for x in r.messages() if x["To"] == "it@example.test"]
            self.assertEqual(len(dig), 1, [x["Subject"] for x in dig])
            users = [x for x in r.messages() if x["To"] == "alice@example.test"]
            self.assertEqual(len(users), 2, [x["Subject"] for x in users])
        finally:
            r.close()

    def test_21_admins_told_immediately(self):
        """abqNotifyAdminsImmediately: a quarantine also mails each administrator
        (a domain's abqAdmins overrides [smtp] admins)."""
        r = self.notice_rig("immediate", "admins = it@example.test\n")
        try:
            r.relay_start()
            r.abqd()
            r.ctl("config", "global", "set", "attribute", "abqMode", "value", "Interactive")
            r.ctl("config", "global", "set", "attribute", "abqNotifyAdminsImmediately",
                  "value", "TRUE")
            dev = new_id("imm")
            r.quarantine(dev)

            def told():
                m = [x for x in r.messages() if x["To"] == "it@example.test"]
                return (len(m) >= 1, [x["Subject"] for x in m])
            self.until("the administrators' immediate mail", told, 20)
            m = [x for x in r.messages() if x["To"] == "it@example.test"]
            self.assertEqual(len(m), 1, [x["Subject"] for x in m])
            self.assertIn(dev, m[0]["Subject"] + m[0].get_body(("plain",)).get_content())
            # A domain's own administrators replace [smtp] admins.
            r.ctl("config", "domain", "example.test", "set", "attribute", "abqAdmins", "value",
                  "sec@example.test")
            dev2 = new_id("imm2")
            r.quarantine(dev2)

            def sec_told():
                m2 = [x for x in r.messages() if x["To"] == "sec@example.test"]
                return (len(m2) >= 1, [x["Subject"] for x in m2])
            self.until("the domain administrators' mail", sec_told, 20)
            self.assertEqual(len([x for x in r.messages() if x["To"] == "it@example.test"]), 1)
        finally:
            r.close()

    def test_22_domain_template_in_the_phones_language(self):
        """A domain's German template is chosen for a phone whose OSLanguage is
        de-DE; an English phone of the same domain gets the built-in text."""
        r = self.notice_rig("locale")
        try:
            r.relay_start()
            r.abqd()
            body = os.path.join(H.work, "locale-body.txt")
            with open(body, "w") as f:
                f.write("Ihr Gerät {model} ({device_id}) wartet auf Freigabe.\n")
            r.ctl("mobile", "abq", "setABQMessage", "domain", "example.test", "quarantined",
                  "de", "subject", "Gerät {device_id} in Quarantäne", "body_plain_file", body)
            r.ctl("config", "global", "set", "attribute", "abqMode", "value", "Interactive")
            german = Phone(device_id=new_id("de"), user="alice", device_type="Android")
            german.port = r.port
            resp = german.post("Settings", wbxml(settings_xml(
                {"Model": "Pixel 9", "OS": "Android 15", "OSLanguage": "de-DE"})))
            self.assertEqual(resp.status, 200, resp)
            english = Phone(device_id=new_id("en"), user="alice", device_type="Android")
            english.port = r.port
            english.post("Settings", wbxml(settings_xml(
                {"Model": "Pixel 9", "OS": "Android 15", "OSLanguage": "en-US"})))

            def both():
                m = [x for x in r.messages() if x["To"] == "alice@example.test"]
                return (len(m) >= 2, [x["Subject"] for x in m])
            self.until("both quarantine mails", both, 20)
            by_subject = {x["Subject"]: x for x in r.messages()}
            de = [x for k, x in by_subject.items() if german.device_id in k]
            self.assertEqual(len(de), 1, list(by_subject))
            self.assertIn("Quarantäne", de[0]["Subject"])
            self.assertIn("Ihr Gerät Pixel 9 (%s)" % german.device_id,
                          de[0].get_body(("plain",)).get_content())
            en = [x for k, x in by_subject.items() if english.device_id in k
                  or english.device_id in x.get_body(("plain",)).get_content()]
            self.assertEqual(len(en), 1, list(by_subject))
            self.assertNotIn("Quarantäne", en[0]["Subject"])
            # The quarantine mailbox's alert speaks the same language as the mail.
            _, _, alert = self.mailbox_inbox(german)
            self.assertIn("Quarantäne", alert[0])
            _, _, alert = self.mailbox_inbox(english)
            self.assertNotIn("Quarantäne", alert[0])
        finally:
            r.close()

    def assert_once(self, msgs, expect):
        """Each Message-ID once, and expect of them."""
        ids = [m["Message-ID"] for m in msgs]
        self.assertEqual(len(ids), len(set(ids)), "duplicates: %r" % ids)
        self.assertEqual(len(ids), expect, [m["Subject"] for m in msgs])

    def test_19_relay_down_then_up(self):
        """The relay stopped while a device is quarantined, then started: the
        user's mail is delivered exactly once."""
        r = self.notice_rig("relaydown")
        try:
            r.relay_start()
            r.abqd()
            r.ctl("config", "global", "set", "attribute", "abqMode", "value", "Interactive")
            r.ctl("mobile", "abq", "setNotificationInterval", "0")
            r.relay_stop()
            dev = new_id("down")
            r.quarantine(dev)

            def failed_once():
                n = json.loads(r.ctl("mobile", "abq", "outbox", "--json"))["notices"]
                return (len(n) == 1 and n[0]["attempts"] >= 1, n)
            self.until("an attempt fails with the relay down", failed_once, 15)
            self.assertEqual(r.messages(), [])
            r.relay_start()

            def delivered():
                m = r.messages()
                return (len(m) >= 1, [x["Subject"] for x in m])
            self.until("the mail arrives after the relay is back", delivered, 60)
            time.sleep(3)
            msgs = r.messages()
            self.assert_once(msgs, 1)
            self.assertIn(dev, msgs[0]["Subject"])
        finally:
            r.close()

    def test_20_sigkill_with_queued_notices(self):
        """abqd killed with SIGKILL while notices wait (relay down), restarted,
        relay up: every notice delivered exactly once."""
        r = self.notice_rig("sigkill")
        try:
            r.relay_start()
            r.abqd()
            r.ctl("config", "global", "set", "attribute", "abqMode", "value", "Interactive")
            r.ctl("mobile", "abq", "setNotificationInterval", "0")
            r.relay_stop()
            devs = [new_id("kill1"), new_id("kill2")]
            for d in devs:
                r.quarantine(d)
            r.ctl("mobile", "abq", "block", devs[0], "account", "alice")

            def queued():
                n = json.loads(r.ctl("mobile", "abq", "outbox", "--json"))["notices"]
                return (len(n) == 3 and all(x["state"] == "queued" for x in n), n)
            self.until("three notices queued", queued, 15)
            r.kill_abqd()
            r.abqd()
            r.relay_start()

            def delivered():
                m = r.messages()
                return (len(m) >= 3, [x["Subject"] for x in m])
            self.until("every notice delivered after the restart", delivered, 60)
            time.sleep(3)
            msgs = r.messages()
            self.assert_once(msgs, 3)

            def all_sent():
                n = json.loads(r.ctl("mobile", "abq", "outbox", "--json"))["notices"]
                return (len(n) == 3 and all(x["state"] == "sent" for x in n), n)
            self.until("the outbox shows all sent", all_sent, 10)
        finally:
            r.close()

    # 90 --------------------------------------------------------------
    # 23 --------------------------------------------------------------
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
                s = socket.create_connection(("127.0.0.1", H.abqd_port), timeout=10)
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

    def healthz(self):
        conn = http.client.HTTPConnection("127.0.0.1", H.admin_port, timeout=10)
        try:
            conn.request("GET", "/healthz")
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def test_90_upstream_down_then_back(self):
        phone = Phone(device_id=new_id("down"))
        phone.folders(self)
        self.assertEqual(self.healthz()[0], 200, "/healthz with the upstream up")
        errors = self.scrape()[0]["abqd_upstream_errors_total"]
        fresh = Phone(device_id=new_id("down2"), user="bob", password="secret-but-new")
        with Timer("fixture down (upstream stopped)"):
            H.fixture_ok("down")
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
                H.fixture_ok("up")
        # The same request, with the same abqd.
        self.assertIn("2", [f[3] for f in phone.folders(self)])
        self.assertEqual(self.healthz()[0], 200, "/healthz once the upstream answers again")
        d = self.device_info("alice", phone.device_id)["device"]
        self.assertEqual(d["state"], "Allowed")

    # last ------------------------------------------------------------
    def test_99_sigterm_clean_exit(self):
        """abqd ends on SIGTERM with status 0 and no sanitizer report."""
        with Timer("abqd SIGTERM to exit"):
            rc = H.stop_abqd()
        self.assertEqual(rc, 0, "abqd exit status after SIGTERM: %r" % rc)
        log = H.log_text(limit=10 ** 9)
        for bad in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            self.assertNotIn(bad, log, "sanitizer report in abqd's log")


def run_suite(name, harness, tests=None, add_args=None, before_start=None, after_start=None,
              at_end=None):
    """The main() of every end-to-end suite (this file's and those that import it).

    Reads --abqd, --abqctl and --smtpd (and what add_args(parser) adds), makes
    `harness` this run's H, starts it (before_start(args) runs first, after_start()
    once the fixture and abqd are up), runs the tests (the TestCase class `tests`,
    or every test of the __main__ module; other arguments select tests as
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
            suite = unittest.TestLoader().loadTestsFromTestCase(tests)
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


def main():
    run_suite("e2e", Harness())


if __name__ == "__main__":
    main()
