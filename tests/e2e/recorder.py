#!/usr/bin/env python3
"""A small ActiveSync upstream that records exactly what reaches it.

The gate tests (test_gate.py) put abqd in front of it to assert what abqd
forwards and, above all, what it never forwards: every request that arrives
is kept whole (request line, every header line in order, body bytes) for the
test to look at. A real server (SOGo, tests/fixture) answers the same
requests in the other e2e suites; this one exists because no real server tells what
bytes it was given.

It speaks HTTP/1.1 with keep-alive, reads Content-Length and chunked bodies
and answers:
- OPTIONS with Basic credentials of a known login (see LOGINS): 200 with the
  MS-ASProtocolVersions and MS-ASProtocolCommands headers; else 401. abqd's
  auth probe is such an OPTIONS.
- anything else: 200 with a small WBXML body (FolderSync Status 1), unless
  the test set `reply` to a function that gives the whole answer's bytes
  for a request (None: the usual answer).
Logins are looked up the way many upstreams do: "EXAMPLE\\alice", "alice" and
"alice@example.test" are the same person.

With `zpush` set it also demands provisioning as Z-Push and grommunio do
(they stand in for those servers here: Debian packages neither): until a
DeviceId has sent Provision phase 2 acknowledging its temporary key with
Status 1, every other POST is answered HTTP 449 at 12.x and HTTP 200 with the
command's root Status 142 at 14.0 and later; once provisioned, a request
whose X-MS-PolicyKey is not the final key it handed out gets 449 (12.x) or
Status 144. Such refused requests are not executed; `executed` lists the
(command, DeviceId) of those that were, `provisions` the (DeviceId, phase) of
every Provision. `wipe` (a set of DeviceIds) adds RemoteWipe to their
Provision answers.

Python 3 standard library only; runs in a thread of the test process.
"""

import base64
import socket
import threading
import time
import urllib.parse

# FolderSync response, Status 1, SyncKey "up-1", no changes (MS-ASCMD).
FOLDERSYNC_OK = bytes.fromhex("03016a00" "0007" "56" "4c033100" "01" "520375702d3100" "01"
                              "4e" "5703300001" "01" "01")
PASSWORDS = {"alice": "secret", "bob": "secret"}

# ---- a little WBXML, for the provisioning upstream (zpush)
# (page, token) of the roots and their Status, by command (MS-ASCMD).
ROOTS = {"Sync": (0, 0x05, 0x0E), "FolderSync": (7, 0x16, 0x0C), "Ping": (13, 0x05, 0x07),
         "SendMail": (21, 0x05, 0x12), "SmartReply": (21, 0x07, 0x12),
         "SmartForward": (21, 0x06, 0x12), "Settings": (18, 0x05, 0x06),
         "GetItemEstimate": (6, 0x05, 0x09), "FolderCreate": (7, 0x13, 0x0C)}
PROV = 14  # the Provision code page: Provision 05, Policies 06, Policy 07, PolicyType 08,
# PolicyKey 09, Data 0A, Status 0B, RemoteWipe 0C, EASProvisionDoc 0D, DevicePasswordEnabled 0E


def wbxml_el(page, token, content):
    """(page, token, str | [children]) -> WBXML bytes of the element (no header)."""
    out = b"\x00" + bytes([page])  # SWITCH_PAGE every time: simple, and valid
    if content is None:
        return out + bytes([token])
    out += bytes([token | 0x40])
    if isinstance(content, str):
        out += b"\x03" + content.encode() + b"\x00"
    else:
        out += b"".join(wbxml_el(*c) for c in content)
    return out + b"\x01"


def wbxml_doc(page, token, content):
    return b"\x03\x01\x6a\x00" + wbxml_el(page, token, content)


def wbxml_read(data):
    """WBXML bytes -> [(page, token, [children] | str)] of the root (tags, STR_I and
    OPAQUE only, as ActiveSync writes them)."""
    pos, page = 4, 0
    if data[3] != 0:
        pos += data[3]
    stack = [(None, None, [])]
    while pos < len(data):
        b = data[pos]
        pos += 1
        if b == 0x00:
            page = data[pos]
            pos += 1
        elif b == 0x01:
            el = stack.pop()
            stack[-1][2].append(el)
        elif b == 0x03:
            end = data.index(b"\x00", pos)
            stack[-1][2].append(data[pos:end].decode("utf-8", "replace"))
            pos = end + 1
        elif b == 0xC3:
            n = 0
            while True:
                c = data[pos]
                pos += 1
                n = (n << 7) | (c & 0x7F)
                if not c & 0x80:
                    break
            stack[-1][2].append(data[pos:pos + n])
            pos += n
        elif b & 0x40:
            stack.append((page, b & 0x3F, []))
        else:
            stack[-1][2].append((page, b & 0x3F, []))
    return stack[0][2][0] if stack[0][2] else None


def wbxml_text(el, *path):
    """The text at path ((page, token), ...) below el, or None."""
    for p in path:
        kids = [c for c in el[2] if isinstance(c, tuple) and c[:2] == p]
        if not kids:
            return None
        el = kids[0]
    texts = [c for c in el[2] if isinstance(c, str)]
    return texts[0] if texts else ""


def login_of(user):
    """The person a login names, as a lenient upstream reads it, or None."""
    if "\\" in user:
        user = user.rsplit("\\", 1)[1]
    local, _, domain = user.partition("@")
    if domain and domain.lower() != "example.test":
        return None
    return local.lower() or None


class Request:
    def __init__(self, line, headers, body, peer):
        self.line = line          # bytes, without CRLF
        self.headers = headers    # [(name bytes, value bytes)] as sent
        self.body = body          # bytes, de-chunked
        self.peer = peer
        parts = line.split(b" ")
        self.method = parts[0].decode("latin-1")
        self.target = parts[1].decode("latin-1") if len(parts) > 1 else ""

    def header_values(self, name):
        n = name.lower().encode()
        return [v.decode("latin-1") for k, v in self.headers if k.lower() == n]

    def raw(self):
        return self.line + b"\r\n" + b"".join(k + b": " + v + b"\r\n" for k, v in self.headers)

    def __repr__(self):
        return "<%s %s>" % (self.method, self.target)


class Recorder:
    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.requests = []
        self.probes_in_flight = 0
        self.max_probes_in_flight = 0
        self.probe_delay = 0.0  # seconds an OPTIONS is held before its answer
        self.reply = None  # request -> answer bytes or None, for other than OPTIONS
        self.zpush = False  # demand provisioning as Z-Push does (module docstring)
        self.keys = {}  # DeviceId (upper) -> [temporary key, final key or None]
        self.provisions = []  # (DeviceId, phase) of every Provision
        self.executed = []  # (command, DeviceId) of the requests served
        self.wipe = set()  # DeviceIds whose Provision answer carries RemoteWipe
        self.next_key = 1000
        self.stopped = False
        self.thread = threading.Thread(target=self.accept_loop, daemon=True)
        self.thread.start()

    def stop(self):
        self.stopped = True
        try:
            self.sock.close()
        except OSError:
            pass

    def clear(self):
        with self.lock:
            self.requests = []
            self.max_probes_in_flight = 0

    def seen(self, pred=None):
        with self.lock:
            return [r for r in self.requests if pred is None or pred(r)]

    def seen_bytes(self):
        """Everything that reached the upstream, as one bytes string."""
        with self.lock:
            return b"".join(r.raw() + r.body for r in self.requests)

    # ---- serving

    def accept_loop(self):
        while not self.stopped:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn, peer), daemon=True).start()

    def serve(self, conn, peer):
        f = conn.makefile("rb")
        try:
            while True:
                req = self.read_request(f, peer)
                if req is None:
                    return
                with self.lock:
                    self.requests.append(req)
                conn.sendall(self.answer(req))
        except (OSError, ValueError):
            return
        finally:
            try:
                f.close()
                conn.close()
            except OSError:
                pass

    def read_request(self, f, peer):
        line = f.readline(65536)
        if not line:
            return None
        line = line.rstrip(b"\r\n")
        headers = []
        while True:
            h = f.readline(65536)
            if not h:
                return None
            h = h.rstrip(b"\r\n")
            if not h:
                break
            k, _, v = h.partition(b":")
            headers.append((k, v.strip()))
        body = b""
        te = [v for k, v in headers if k.lower() == b"transfer-encoding"]
        cl = [v for k, v in headers if k.lower() == b"content-length"]
        if te and te[-1].lower() == b"chunked":
            while True:
                size = int(f.readline(1024).split(b";")[0], 16)
                if size == 0:
                    while f.readline(65536).strip():
                        pass
                    break
                body += f.read(size)
                f.readline(16)
        elif cl:
            body = f.read(int(cl[0]))
        return Request(line, headers, body, peer)

    def answer(self, req):
        if req.method == "OPTIONS":
            with self.lock:
                self.probes_in_flight += 1
                self.max_probes_in_flight = max(self.max_probes_in_flight,
                                                self.probes_in_flight)
            try:
                if self.probe_delay:
                    time.sleep(self.probe_delay)
                ok = self.authorized(req)
            finally:
                with self.lock:
                    self.probes_in_flight -= 1
            if not ok:
                return (b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"up\"\r\n"
                        b"Content-Length: 0\r\n\r\n")
            return (b"HTTP/1.1 200 OK\r\nMS-ASProtocolVersions: 12.1,14.0,14.1,16.0,16.1\r\n"
                    b"MS-ASProtocolCommands: Sync,FolderSync,Ping,SendMail,Settings,Provision\r\n"
                    b"Content-Length: 0\r\n\r\n")
        special = self.reply(req) if self.reply is not None else None
        if special is not None:
            return special
        if self.zpush and req.method == "POST":
            special = self.provisioning(req)
            if special is not None:
                return special
        body = FOLDERSYNC_OK
        return (b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.ms-sync.wbxml\r\n"
                b"X-Recorder: 1\r\nContent-Length: %d\r\n\r\n" % len(body)) + body

    # ---- the provisioning upstream (zpush)

    def provisioning(self, req):
        """Z-Push's provisioning for req: Provision answered, other commands refused
        (449 / Status 142 / 144) until provisioned with the right key; None: serve it."""
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(req.target).query)
        cmd = q.get("Cmd", [""])[0]
        dev = q.get("DeviceId", [""])[0].upper()
        ver = (req.header_values("MS-ASProtocolVersion") or ["14.1"])[0]
        with self.lock:
            if cmd == "Provision":
                return self.provision(req, dev)
            keys = self.keys.get(dev)
            sent = (req.header_values("X-MS-PolicyKey") or [""])[0]
            if keys is not None and keys[1] is not None and sent == str(keys[1]):
                self.executed.append((cmd, dev))
                return None
            status = "142" if keys is None or keys[1] is None else "144"
        if float(ver) < 14.0 or cmd not in ROOTS:
            return (b"HTTP/1.1 449 Retry after sending a PROVISION command\r\n"
                    b"Content-Length: 0\r\n\r\n")
        page, root, st = ROOTS[cmd]
        return self.wbxml_answer(wbxml_doc(page, root, [(page, st, status)]))

    def provision(self, req, dev):
        """Provision phase 1 (a temporary key and a policy) or phase 2 (the final key
        for an acknowledged temporary key). Called with the lock held."""
        doc = wbxml_read(req.body) if req.body else None
        policy = [(PROV, 0x06), (PROV, 0x07)]
        key = wbxml_text(doc, *policy, (PROV, 0x09)) if doc else None
        ack = wbxml_text(doc, *policy, (PROV, 0x0B)) if doc else None
        wipe = [(PROV, 0x0C, None)] if dev in self.wipe else []
        if key is None:  # phase 1
            self.provisions.append((dev, 1))
            self.next_key += 1
            self.keys[dev] = [self.next_key, None]
            pol = [(PROV, 0x08, "MS-EAS-Provisioning-WBXML"), (PROV, 0x0B, "1"),
                   (PROV, 0x09, str(self.next_key)),
                   (PROV, 0x0A, [(PROV, 0x0D, [(PROV, 0x0E, "1")])])]
        else:
            self.provisions.append((dev, 2))
            keys = self.keys.get(dev)
            if keys is None or key != str(keys[0]) or ack != "1":
                pol = [(PROV, 0x08, "MS-EAS-Provisioning-WBXML"), (PROV, 0x0B, "5")]
            else:
                self.next_key += 1
                keys[1] = self.next_key
                pol = [(PROV, 0x08, "MS-EAS-Provisioning-WBXML"), (PROV, 0x0B, "1"),
                       (PROV, 0x09, str(keys[1]))]
        body = wbxml_doc(PROV, 0x05, [(PROV, 0x0B, "1"), (PROV, 0x06, [(PROV, 0x07, pol)])]
                         + wipe)
        return self.wbxml_answer(body)

    @staticmethod
    def wbxml_answer(body):
        return (b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.ms-sync.wbxml\r\n"
                b"X-Recorder: 1\r\nContent-Length: %d\r\n\r\n" % len(body)) + body

    @staticmethod
    def authorized(req):
        auth = req.header_values("Authorization")
        if len(auth) != 1 or not auth[0].startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(auth[0][6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        who = login_of(user)
        return who is not None and PASSWORDS.get(who) == password
