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

Python 3 standard library only; runs in a thread of the test process.
"""

import base64
import socket
import threading
import time

# FolderSync response, Status 1, SyncKey "up-1", no changes (MS-ASCMD).
FOLDERSYNC_OK = bytes.fromhex("03016a00" "0007" "56" "4c033100" "01" "520375702d3100" "01"
                              "4e" "5703300001" "01" "01")
PASSWORDS = {"alice": "secret", "bob": "secret"}


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
        body = FOLDERSYNC_OK
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
