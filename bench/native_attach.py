#!/usr/bin/env python3
"""Native mode: one large attachment fetched through abqd, abqd's peak RSS and the time.

    bench/native_attach.py [--build build] [--mb 50] [--slow KBPS] [--no-binary]

A private Dovecot on free ports (tests/imap/test_imap_live.py's Dovecot class,
the one tests/native uses; not the e2e fixture), alice's INBOX holding one
message with a PDF-ish attachment of --mb MiB (base64 in the message), and
abqd from --build in native mode (`[upstream] url = imap://` that Dovecot,
Permissive). A phone then asks GetAttachment (12.1) and ItemOperations Fetch of
the attachment's FileReference (<Inbox>:1:2), reading the answer at full speed
or at --slow KiB/s, and checks the bytes (GetAttachment: the attachment;
ItemOperations: its base64 inside the WBXML Data). Printed per case: the
seconds, the answer's bytes, abqd's VmRSS before, its peak while the case ran
(sampled every 20 ms) and VmHWM. Needs xml2wbxml (libwbxml2-utils) and
Dovecot, as the tests do.
"""
import argparse
import base64
import hashlib
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "imap"))
import test_imap_live as live  # noqa: E402

DOCTYPE = ('<!DOCTYPE ActiveSync PUBLIC "-//MICROSOFT//DTD ActiveSync//EN" '
           '"http://www.microsoft.com/">')


def wbxml(xml):
    d = tempfile.mkdtemp(prefix="abq-att-x2w-")
    try:
        with open(os.path.join(d, "in.xml"), "w") as f:
            f.write('<?xml version="1.0" encoding="utf-8"?>\n%s\n%s\n' % (DOCTYPE, xml))
        subprocess.run(["xml2wbxml", "-a", "-n", "-o", os.path.join(d, "out.wbxml"),
                        os.path.join(d, "in.xml")], check=True, capture_output=True)
        with open(os.path.join(d, "out.wbxml"), "rb") as f:
            return f.read()
    finally:
        shutil.rmtree(d, ignore_errors=True)


# Dovecot's capabilities without BINARY (as tests/native's reduced profile)
NO_BINARY = ("imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ "
             "SORT UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED SPECIAL-USE MOVE\n")


def rss(pid, field="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith(field + ":"):
                return int(ln.split()[1])  # kB
    return 0


def message(data):
    b = "b-%s" % uuid.uuid4().hex
    enc = base64.encodebytes(data).decode()
    return ("From: Bob <bob@example.com>\r\nTo: alice@example.com\r\nSubject: big attachment\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n"
            "--%s\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
            "--%s\r\nContent-Type: application/pdf; name=\"big.pdf\"\r\n"
            "Content-Disposition: attachment; filename=\"big.pdf\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n--%s--\r\n"
            % (b, b, b, enc.replace("\n", "\r\n"), b))


class Phone:
    def __init__(self, port, device_id="BENCHATT1"):
        self.port = port
        self.device_id = device_id
        self.auth = "Basic " + base64.b64encode(
            ("%s:%s" % (live.USER, live.PASSWORD)).encode()).decode()

    def post(self, query, body, sink=None, kbps=0, timeout=600):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        c.request("POST", "/Microsoft-Server-ActiveSync?" + query, body=body,
                  headers={"Authorization": self.auth, "MS-ASProtocolVersion": "14.1",
                           "Content-Type": "application/vnd.ms-sync.wbxml",
                           "User-Agent": "abqd-bench/1.0", "X-MS-PolicyKey": "0"})
        r = c.getresponse()
        n = 0
        while True:
            piece = r.read(65536)
            if not piece:
                break
            n += len(piece)
            if sink is not None:
                sink(piece)
            if kbps:
                time.sleep(len(piece) / 1024.0 / kbps)
        c.close()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), n

    def query(self, cmd, extra=""):
        return "Cmd=%s&User=%s&DeviceId=%s&DeviceType=SmartPhone%s" % (
            cmd, live.USER, self.device_id, extra)


def measure(label, pid, fn):
    peak = [rss(pid)]
    before = peak[0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss(pid))
            time.sleep(0.02)
    t = threading.Thread(target=sample)
    t.start()
    t0 = time.monotonic()
    try:
        out = fn()
    finally:
        stop.set()
        t.join()
    dt = time.monotonic() - t0
    print("%-34s %7.2f s  %s  VmRSS before %6.1f MiB, peak %6.1f MiB; VmHWM %6.1f MiB" % (
        label, dt, out, before / 1024.0, peak[0] / 1024.0, rss(pid, "VmHWM") / 1024.0),
        flush=True)


class Setup:
    """A private Dovecot in d whose INBOX holds one message with an attachment of size
    bytes, and abqd (native mode, Permissive) in front of it; a phone and the
    attachment's FileReference (ref). stop() ends both."""

    def __init__(self, d, size, abqd, abqctl, log_level="info", extra_conf="", upstream_conf="",
                 userip=None):
        self.d, self.proc = d, None
        self.upstream_conf = upstream_conf
        self.dc = live.Dovecot(d)
        if extra_conf:
            with open(self.dc.conf, "a") as f:
                f.write(extra_conf)
        if userip is not None:  # Dovecot's own limit of connections per user and address
            with open(self.dc.conf) as f:
                text = f.read()
            with open(self.dc.conf, "w") as f:
                f.write(re.sub(r"mail_max_userip_connections = \d+",
                               "mail_max_userip_connections = %d" % userip, text))
        self.dc.start()
        try:
            self.start(size, os.path.abspath(abqd), os.path.abspath(abqctl), log_level)
        except BaseException:
            self.stop()
            raise

    def start(self, size, abqd, abqctl, log_level):
        d, dc = self.d, self.dc
        self.data = data = (b"%PDF-1.4\n" + hashlib.sha256(b"x").digest() * 8 +
                            os.urandom(size - 9 - 256))
        self.mime = message(data).encode()
        subprocess.run(["doveadm", "-c", dc.conf, "save", "-u", live.USER, "-m", "INBOX"],
                       input=self.mime, check=True)
        port, adm = live.free_port(), live.free_port()
        ad = os.path.join(d, "abqd")
        os.makedirs(ad)
        with open(os.path.join(ad, "abqd.conf"), "w") as f:
            f.write("[eas]\nlisten = 127.0.0.1:%d\nworkers = 1\n[upstream]\n"
                    "url = imap://127.0.0.1:%d\nca_file = %s\n%s[store]\nurl = sqlite:abqd.db\n"
                    "[admin]\nlisten = 127.0.0.1:%d\n[log]\nlevel = %s\n"
                    % (port, dc.imap_port, dc.ca, self.upstream_conf, adm, log_level))
        ctl = [abqctl, "-c", os.path.join(ad, "abqd.conf")]
        subprocess.run(ctl + ["init"], cwd=ad, check=True, capture_output=True)
        subprocess.run(ctl + ["config", "global", "set", "attribute", "abqMode", "value",
                              "Permissive"], cwd=ad, check=True, capture_output=True)
        self.stderr = os.path.join(ad, "stderr")
        self.proc = proc = subprocess.Popen([abqd, "-d", "-c", "abqd.conf"], cwd=ad,
                                            stderr=open(self.stderr, "w"))
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).connect()
                break
            except OSError:
                time.sleep(0.1)
        self.phone = ph = Phone(port)
        st, h, n = ph.post(ph.query("FolderSync"), wbxml(
            '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0</SyncKey></FolderSync>'))
        assert st == 200, "FolderSync: HTTP %d" % st
        # The Inbox's id: the store numbers folders from 1 in LIST order; ask the server
        # for each until GetAttachment answers (a FileReference is <folder>:<uid>:<section>).
        ref = None
        for fid in range(1, 20):
            st, h, n = ph.post(ph.query("GetAttachment", "&AttachmentName=%d:1:2" % fid), b"",
                               kbps=0)
            if st == 200:
                ref = "%d:1:2" % fid
                break
        assert ref, "no folder holds the attachment"
        self.ref = ref

    def log(self):
        with open(self.stderr) as f:
            return f.read()

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(30)
            self.proc = None
        self.dc.stop()


def itemops_body(ref):
    return wbxml('<ItemOperations xmlns="ItemOperations:" xmlns:A="AirSyncBase:"><Fetch>'
                 '<Store>Mailbox</Store><A:FileReference>%s</A:FileReference></Fetch>'
                 '</ItemOperations>' % ref)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--mb", type=int, default=50)
    ap.add_argument("--slow", type=int, default=0, help="also read at this many KiB/s")
    ap.add_argument("--no-binary", action="store_true",
                    help="Dovecot without BINARY (abqd decodes the base64)")
    a = ap.parse_args()
    root = os.path.abspath(os.path.join(HERE, ".."))
    abqd = os.path.join(root, a.build, "src", "daemon", "abqd")
    abqctl = os.path.join(root, a.build, "src", "ctl", "abqctl")
    d = tempfile.mkdtemp(prefix="abq-att-")
    s = None
    try:
        s = Setup(d, a.mb * 1024 * 1024, abqd, abqctl, extra_conf=NO_BINARY if a.no_binary else "")
        data, ph, ref, proc = s.data, s.phone, s.ref, s.proc
        ver = subprocess.run(["dovecot", "--version"], capture_output=True, text=True).stdout
        print("abqd %s, Dovecot %s; a %d MiB attachment (%d bytes in the message, base64)" % (
            a.build, ver.split()[0], a.mb, len(message(data))), flush=True)
        want = hashlib.sha256(data).hexdigest()

        def getatt(kbps):
            hs = hashlib.sha256()
            st, h, n = ph.post(ph.query("GetAttachment", "&AttachmentName=" + ref), b"",
                               sink=hs.update, kbps=kbps)
            ok = st == 200 and hs.hexdigest() == want
            return "HTTP %d %d bytes %s" % (st, n, "same bytes" if ok else "DIFFERENT")

        def itemops(kbps):
            got = bytearray()
            st, h, n = ph.post(ph.query("ItemOperations"), itemops_body(ref), sink=got.extend,
                               kbps=kbps)
            b64 = base64.b64encode(data)
            i = bytes(got).find(b64)
            ok = st == 200 and i > 0 and got[i - 1] == 3 and got[i + len(b64)] == 0
            return "HTTP %d %d bytes %s" % (st, n, "Data = the base64" if ok else "DIFFERENT")

        measure("GetAttachment", proc.pid, lambda: getatt(0))
        measure("ItemOperations Fetch", proc.pid, lambda: itemops(0))
        if a.slow:
            measure("GetAttachment at %d KiB/s" % a.slow, proc.pid, lambda: getatt(a.slow))
    except AssertionError:
        if os.path.exists(os.path.join(d, "abqd", "stderr")):
            with open(os.path.join(d, "abqd", "stderr")) as f:
                sys.stderr.write("".join(f.readlines()[-15:]))
        raise
    finally:
        if s is not None:
            s.stop()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
