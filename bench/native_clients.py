#!/usr/bin/env python3
"""Phones of alice for bench/native.sh: the same requests to SOGo's ActiveSync
and to abqd in native mode.

    native_clients.py --port PORT --path PATH prep --prefix P [--start 0]
                      --devices 20 [--timed 0] --bodies FILE
    native_clients.py --port PORT --path PATH push --device D --imap-port N
                      [--times 5] [--heartbeat 300] [--give-up 30] --state FILE
    native_clients.py --port 0 append-big --imap-port N [--mb 10]
    native_clients.py --port PORT --path PATH attach --device D --state FILE
                      --ref FILE [--mb 10] [--times 1] --rss-pid PID [--rss-children]

prep: each DeviceId (PREFIX<start> ..) does what a phone does on a new account:
FolderSync 0, Sync 0 on the Inbox, then Sync GetChanges (WindowSize 100,
BodyPreference Type 1 TruncationSize 5000, as tests/e2e's sync_xml) until no
MoreAvailable, and once more with the last key (the phone's confirmation: the
no-change Sync). That last Sync is sent twice more (a repeated SyncKey) and its
HTTP status and Sync Status checked. Writes "DEVICEID HEXBODY INBOX SYNCKEY"
lines (the no-change Sync) to --bodies for bench/native_sync.lua (and push's
--state), and prints
    initial DEVICEID seconds=S windows=W items=I
for each of the first --timed devices (from Sync 0 to the last window), and
    prep devices=N items=I repeat_statuses={...} seconds=S

push: DEVICEID synced to the end (or its Inbox and SyncKey read from --state,
where they are written back at the end), then --times times: Sync to the end, a Ping
on the Inbox (HeartbeatInterval --heartbeat) sent, held 2 s, a message APPENDed
to alice's INBOX over IMAP, and the time from the APPEND's completion to the
Ping's answer (the connection closed unanswered after --give-up seconds:
error=timeout); prints
    push DEVICEID ms=M http=H status=S
for each.

append-big: one message with a --mb MiB attachment (bench10mb.pdf, the same
bytes on every run: a fixed seed) APPENDed to alice's INBOX over IMAP.

attach: the attachment's FileReference taken from --ref, or, the first time,
from the server's own Sync answer (DEVICEID's Inbox and SyncKey read from
--state as push does, synced to the end: the Add of the big message carries
its Attachment with DisplayName bench10mb.pdf and FileReference), and written
to --ref; then --times times an ItemOperations Fetch of that FileReference
(Store Mailbox), the answer read in full, its Data decoded (base64 text, or
opaque bytes) and compared with the attachment's bytes. The server's VmRSS is
sampled every 20 ms meanwhile (--rss-pid, with --rss-children the sum over it
and its children: SOGo's sogod); prints
    attach DEVICEID seconds=S http=H status=ST bytes=B data=D same=yes|no
           rss_before_kib=R rss_peak_kib=P hwm_kib=W
for each (hwm_kib: --rss-pid's own VmHWM, its peak since it started).

Python 3 standard library only; WBXML hand-encoded (MS-ASWBXML code pages 0
AirSync, 7 FolderHierarchy, 13 Ping, 17 AirSyncBase, 20 ItemOperations).
"""

import argparse
import base64
import collections
import hashlib
import http.client
import imaplib
import os
import random
import sys
import threading
import time

HDR = b"\x03\x01\x6a\x00"
FOLDERSYNC_0 = HDR + bytes.fromhex("00 07 56 52 03 30 00 01 01")
USER, PASSWORD = "alice", "secret"


def s(text):
    return b"\x03" + text.encode() + b"\x00"


def sync_body(key, coll, get_changes):
    """tests/e2e/harness.py's sync_xml, in WBXML."""
    # Sync(45) Collections(5C) Collection(4F) SyncKey(4B) CollectionId(52)
    inner = b"\x4b" + s(key) + b"\x01" + b"\x52" + s(coll) + b"\x01"
    if get_changes:
        # DeletesAsMoves(5E) GetChanges(13) WindowSize(55) Options(57) FilterType(58)
        # page 17: BodyPreference(45) Type(46) TruncationSize(47)
        inner += (b"\x5e" + s("1") + b"\x01" + b"\x13" + b"\x55" + s("100") + b"\x01" +
                  b"\x57\x58" + s("0") + b"\x01" + b"\x00\x11\x45\x46" + s("1") + b"\x01" +
                  b"\x47" + s("5000") + b"\x01\x01\x00\x00\x01")
    return HDR + b"\x00\x00\x45\x5c\x4f" + inner + b"\x01\x01\x01"


def ping_body(folder, heartbeat):
    # Ping(45) HeartbeatInterval(48) Folders(49) Folder(4A) Id(4B) Class(4C)
    return (HDR + b"\x00\x0d\x45\x48" + s(str(heartbeat)) + b"\x01\x49\x4a\x4b" + s(folder) +
            b"\x01\x4c" + s("Email") + b"\x01\x01\x01\x01")


def parse(body):
    """WBXML -> [(page, tag, text or None)], one per element in document order
    (text: its inline string, its opaque data as bytes, None for an element
    without either)."""
    out, page, stack = [], 0, []
    if len(body) < 4:
        return out
    i = 1
    for _ in range(3):  # version, publicid, charset, string table length
        while body[i] & 0x80:
            i += 1
        i += 1
    while i < len(body):
        t = body[i]
        i += 1
        if t == 0x00:
            page = body[i]
            i += 1
        elif t == 0x01:
            if stack:
                stack.pop()
        elif t == 0x03:
            j = body.index(b"\x00", i)
            if stack and stack[-1] is not None:
                out[stack[-1]] = out[stack[-1]][:2] + (body[i:j].decode("utf-8", "replace"),)
            i = j + 1
        elif t == 0xC3:  # opaque: kept as bytes
            n = 0
            while True:
                b = body[i]
                i += 1
                n = (n << 7) | (b & 0x7F)
                if not b & 0x80:
                    break
            if stack and stack[-1] is not None:
                out[stack[-1]] = out[stack[-1]][:2] + (body[i:i + n],)
            i += n
        else:
            out.append((page, t & 0x3F, None))
            if t & 0x40:
                stack.append(len(out) - 1)
    return out


def first(events, page, tag):
    for p, t, text in events:
        if p == page and t == tag:
            return text
    return None


class Phone:
    def __init__(self, port, path, device):
        self.port, self.path, self.device = port, path, device

    def post(self, cmd, body, timeout=120):
        auth = base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request("POST", "%s?Cmd=%s&User=%s&DeviceId=%s&DeviceType=iPhone" %
                      (self.path, cmd, USER, self.device), body=body,
                      headers={"Authorization": "Basic " + auth, "MS-ASProtocolVersion": "14.1",
                               "Content-Type": "application/vnd.ms-sync.wbxml",
                               "User-Agent": "Apple-iPhone/1402.100", "X-MS-PolicyKey": "0"})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def inbox(self):
        st, body = self.post("FolderSync", FOLDERSYNC_0)
        if st != 200:
            sys.exit("%s FolderSync: HTTP %d" % (self.device, st))
        ev = parse(body)
        sid = None
        for p, t, text in ev:
            if p == 7 and t == 0x08:  # ServerId
                sid = text
            elif p == 7 and t == 0x0A and text == "2":  # Type 2: the Inbox
                return sid
        sys.exit("%s FolderSync: no Inbox (%d bytes)" % (self.device, len(body)))

    def sync(self, coll, key, get_changes):
        """(http, sync status, new key, adds, more) of one Sync."""
        st, body = self.post("Sync", sync_body(key, coll, get_changes))
        if st != 200 or not body:  # an empty 200: nothing changed
            return st, None, key, 0, False
        ev = parse(body)
        status = first(ev, 0, 0x0E)
        nkey = first(ev, 0, 0x0B) or key
        adds = sum(1 for p, t, _ in ev if p == 0 and t == 0x07)
        more = any(p == 0 and t == 0x14 for p, t, _ in ev)
        return st, status, nkey, adds, more

    def to_end(self, coll, key):
        """GetChanges until no MoreAvailable, then once more: (key, windows, items)."""
        windows = items = 0
        for _ in range(10000):
            st, status, nkey, adds, more = self.sync(coll, key, True)
            if st != 200 or status not in (None, "1"):
                sys.exit("%s Sync %s: HTTP %d Status %s" % (self.device, key, st, status))
            windows += 1
            items += adds
            key = nkey
            if not more and not adds:
                return key, windows, items
        sys.exit("%s: no end to the Sync" % self.device)


def prep(a):
    t00 = time.monotonic()
    statuses = collections.Counter()
    total = 0
    with open(a.bodies, "w") as f:
        for i in range(a.start, a.start + a.devices):
            ph = Phone(a.port, a.path, "%s%02d" % (a.prefix, i))
            coll = ph.inbox()
            t0 = time.monotonic()
            st, status, key, _, _ = ph.sync(coll, "0", False)
            if st != 200 or status != "1":
                sys.exit("%s Sync 0: HTTP %d Status %s" % (ph.device, st, status))
            key, windows, items = ph.to_end(coll, key)
            dt = time.monotonic() - t0
            total += items
            if i < a.start + a.timed:
                print("initial %s seconds=%.2f windows=%d items=%d" % (ph.device, dt, windows, items),
                      flush=True)
            for _ in range(2):  # the no-change Sync, repeated as wrk will
                st, status, _, adds, _ = ph.sync(coll, key, True)
                statuses["%d/%s/%d" % (st, status or "empty", adds)] += 1
            f.write("%s %s %s %s\n" % (ph.device, sync_body(key, coll, True).hex(), coll, key))
    print("prep devices=%d items=%d repeat_statuses(http/status/adds)=%s seconds=%.1f" %
          (a.devices, total, dict(statuses), time.monotonic() - t00), flush=True)


def push(a):
    ph = Phone(a.port, a.path, a.device)
    try:
        with open(a.state) as f:
            coll, key = f.read().split()
    except OSError:
        coll = ph.inbox()
        _, _, key, _, _ = ph.sync(coll, "0", False)
        key, _, _ = ph.to_end(coll, key)
    for n in range(a.times):
        key, _, _ = ph.to_end(coll, key)
        res = {}

        def ping():
            try:
                res["http"], body = ph.post("Ping", ping_body(coll, a.heartbeat),
                                            timeout=a.give_up + 2)
                res["status"] = first(parse(body), 13, 0x07)
            except Exception as e:  # noqa: BLE001 (reported, not raised)
                res["error"] = repr(e)
            res["t"] = time.monotonic()
        th = threading.Thread(target=ping)
        th.start()
        time.sleep(2)
        if not th.is_alive():
            print("push %s early http=%s status=%s" % (ph.device, res.get("http"), res.get("status")),
                  flush=True)
            continue
        m = imaplib.IMAP4("127.0.0.1", a.imap_port)
        m.login(USER, PASSWORD)
        msg = ("From: bench@example.test\r\nTo: alice@example.test\r\nSubject: native push %s %d"
               "\r\nDate: %s\r\nMessage-ID: <push%d.%d@bench.test>\r\n\r\nA new message.\r\n" %
               (ph.device, n, time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
                time.time_ns(), n))
        m.append("INBOX", None, None, msg.encode())
        t0 = time.monotonic()
        m.logout()
        th.join(a.give_up + 10)
        print("push %s ms=%.0f http=%s status=%s%s" % (
            ph.device, (res.get("t", time.monotonic()) - t0) * 1000, res.get("http"),
            res.get("status"), " error=" + res["error"] if "error" in res else ""), flush=True)
    key, _, _ = ph.to_end(coll, key)
    with open(a.state, "w") as f:
        f.write("%s %s\n" % (coll, key))


BIG_NAME = "bench10mb.pdf"


def big_data(mb):
    """The attachment's bytes: a PDF header, then a fixed seed's pseudo-random bytes
    (the same on every run, so the fetches can be checked without the APPEND)."""
    n = mb * 1024 * 1024
    return b"%PDF-1.4\n" + random.Random("bench10mb/%d" % mb).randbytes(n - 9)


def append_big(a):
    data = big_data(a.mb)
    b = "b-bench-%d" % time.time_ns()
    enc = base64.encodebytes(data).decode().replace("\n", "\r\n")
    msg = ("From: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: native attachment"
           " %d MiB\r\nDate: %s\r\nMessage-ID: <%s@bench.test>\r\nMIME-Version: 1.0\r\n"
           "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n--%s\r\n"
           "Content-Type: text/plain\r\n\r\nSee attached.\r\n--%s\r\n"
           "Content-Type: application/pdf; name=\"%s\"\r\n"
           "Content-Disposition: attachment; filename=\"%s\"\r\n"
           "Content-Transfer-Encoding: base64\r\n\r\n%s--%s--\r\n" % (
               a.mb, time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()), b, b, b, b,
               BIG_NAME, BIG_NAME, enc, b))
    m = imaplib.IMAP4("127.0.0.1", a.imap_port)
    m.login(USER, PASSWORD)
    typ, _ = m.append("INBOX", None, None, msg.encode())
    m.logout()
    if typ != "OK":
        sys.exit("APPEND of the %d MiB message: %s" % (a.mb, typ))
    print("append-big %d MiB attachment, %d bytes message" % (a.mb, len(msg)), flush=True)


def itemops_body(ref):
    # page 20: ItemOperations(45) Fetch(46) Store(47); page 17: FileReference(51)
    return (HDR + b"\x00\x14\x45\x46\x47" + s("Mailbox") + b"\x01" + b"\x00\x11\x51" + s(ref) +
            b"\x01\x01\x01")


def find_ref(ph, coll, key):
    """Sync GetChanges from key to the end, and the FileReference of the Attachment
    named BIG_NAME in the answers: (ref or None, key)."""
    ref = None
    for _ in range(10000):
        st, body = ph.post("Sync", sync_body(key, coll, True), timeout=600)
        if st != 200 or not body:
            return ref, key
        ev = parse(body)
        status = first(ev, 0, 0x0E)
        if status not in (None, "1"):
            sys.exit("%s Sync %s: Status %s" % (ph.device, key, status))
        name = fref = None
        for p, t, text in ev:
            if p == 17 and t == 0x0F:  # Attachment
                name = fref = None
            elif p == 17 and t == 0x10:  # DisplayName
                name = text
            elif p == 17 and t == 0x11:  # FileReference
                fref = text
            if name == BIG_NAME and fref:
                ref = fref
        key = first(ev, 0, 0x0B) or key
        if not any(p == 0 and t == 0x14 for p, t, _ in ev):  # no MoreAvailable
            return ref, key
    sys.exit("%s: no end to the Sync" % ph.device)


def proc_kib(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for ln in f:
                if ln.startswith(field + ":"):
                    return int(ln.split()[1])
    except OSError:
        pass
    return 0


def rss_sum(pid, children):
    """VmRSS of pid in KiB, with children: plus its children's (SOGo's workers)."""
    total = proc_kib(pid, "VmRSS")
    if children:
        kids = set()
        try:
            for tid in os.listdir("/proc/%d/task" % pid):
                with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                    kids.update(int(k) for k in f.read().split())
        except OSError:
            pass
        total += sum(proc_kib(k, "VmRSS") for k in kids)
    return total


def attach(a):
    ph = Phone(a.port, a.path, a.device)
    want = hashlib.sha256(big_data(a.mb)).hexdigest()
    try:
        with open(a.ref) as f:
            ref = f.read().strip()
    except OSError:
        try:
            with open(a.state) as f:
                coll, key = f.read().split()
        except OSError:
            coll = ph.inbox()
            _, _, key, _, _ = ph.sync(coll, "0", False)
        ref, key = find_ref(ph, coll, key)
        with open(a.state, "w") as f:
            f.write("%s %s\n" % (coll, key))
        if not ref:
            sys.exit("%s: no attachment %s in the Sync answers" % (ph.device, BIG_NAME))
        with open(a.ref, "w") as f:
            f.write(ref + "\n")
    for _ in range(a.times):
        before = rss_sum(a.rss_pid, a.rss_children)
        peak = [before]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], rss_sum(a.rss_pid, a.rss_children))
                time.sleep(0.02)
        th = threading.Thread(target=sample)
        th.start()
        t0 = time.monotonic()
        try:
            st, body = ph.post("ItemOperations", itemops_body(ref), timeout=600)
        finally:
            dt = time.monotonic() - t0
            stop.set()
            th.join()
        ev = parse(body) if st == 200 else []
        status = first(ev, 20, 0x0D)
        raw = first(ev, 20, 0x0C)
        data = b""
        if isinstance(raw, str):
            data = base64.b64decode(raw)
        elif isinstance(raw, bytes):
            data = raw if hashlib.sha256(raw).hexdigest() == want else base64.b64decode(raw)
        same = hashlib.sha256(data).hexdigest() == want
        print("attach %s seconds=%.2f http=%d status=%s bytes=%d data=%d same=%s "
              "rss_before_kib=%d rss_peak_kib=%d hwm_kib=%d" % (
                  ph.device, dt, st, status, len(body), len(data), "yes" if same else "no",
                  before, peak[0], proc_kib(a.rss_pid, "VmHWM")), flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/Microsoft-Server-ActiveSync")
    sub = p.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("prep")
    q.add_argument("--prefix", default="BENCHN")
    q.add_argument("--start", type=int, default=0)
    q.add_argument("--devices", type=int, default=20)
    q.add_argument("--timed", type=int, default=0)
    q.add_argument("--bodies", required=True)
    q = sub.add_parser("push")
    q.add_argument("--device", required=True)
    q.add_argument("--imap-port", type=int, required=True)
    q.add_argument("--times", type=int, default=5)
    q.add_argument("--heartbeat", type=int, default=300)
    q.add_argument("--give-up", type=int, default=30)
    q.add_argument("--state", required=True)
    q = sub.add_parser("append-big")
    q.add_argument("--imap-port", type=int, required=True)
    q.add_argument("--mb", type=int, default=10)
    q = sub.add_parser("attach")
    q.add_argument("--device", required=True)
    q.add_argument("--state", required=True)
    q.add_argument("--ref", required=True)
    q.add_argument("--mb", type=int, default=10)
    q.add_argument("--times", type=int, default=1)
    q.add_argument("--rss-pid", type=int, required=True)
    q.add_argument("--rss-children", action="store_true")
    a = p.parse_args()
    {"prep": prep, "push": push, "append-big": append_big, "attach": attach}[a.cmd](a)


if __name__ == "__main__":
    main()
