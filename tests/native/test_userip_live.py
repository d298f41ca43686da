#!/usr/bin/env python3
"""Native mode against a mail server that refuses connections over its own cap.

A private Dovecot (bench/native_attach.py's Setup) whose
`mail_max_userip_connections` is 1, abqd in front of it with
`max_connections_per_account = 3`: abqd will try more connections for the
account than the server takes. Eight phones of the account ask FolderSync at
once, three rounds or more: every answer is 200 (none is a 401 as if the password
were wrong, none a 5xx), Dovecot's log shows that it did refuse connections
(so the case was met), and abqd's log does not take the refusal for a wrong
password; afterwards a phone still syncs.

  test_userip_live.py --abqd build/src/daemon/abqd --abqctl build/src/ctl/abqctl
"""
import argparse
import os
import shutil
import socket
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))
import native_attach as na  # noqa: E402
from checks import Failure, expect  # noqa: E402

FOLDERSYNC_0 = '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0</SyncKey></FolderSync>'


def at_once(phone, device_ids, body):
    """One FolderSync from each device, in flight together: every request is sent
    but its last byte, then the last bytes back to back, so abqd holds them all
    before it can have answered the first. The HTTP statuses, in order."""
    socks = []
    for dev in device_ids:
        q = "Cmd=FolderSync&User=%s&DeviceId=%s&DeviceType=SmartPhone" % (na.live.USER, dev)
        req = ("POST /Microsoft-Server-ActiveSync?%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               "Authorization: %s\r\nMS-ASProtocolVersion: 14.1\r\n"
               "Content-Type: application/vnd.ms-sync.wbxml\r\nX-MS-PolicyKey: 0\r\n"
               "Content-Length: %d\r\nConnection: close\r\n\r\n" %
               (q, phone.auth, len(body))).encode() + body
        c = socket.create_connection(("127.0.0.1", phone.port), timeout=60)
        c.sendall(req[:-1])
        socks.append((c, req[-1:]))
    for c, last in socks:
        c.sendall(last)
    out = []
    for c, _ in socks:
        data = b""
        while True:
            piece = c.recv(65536)
            if not piece:
                break
            data += piece
        c.close()
        line = data.split(b"\r\n", 1)[0].split()
        out.append(int(line[1]) if len(line) > 1 and line[1].isdigit() else 0)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--abqd", required=True)
    ap.add_argument("--abqctl", required=True)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="abq-userip-")
    s = None
    ok = True
    try:
        s = na.Setup(d, 4096, a.abqd, a.abqctl, log_level="debug", userip=1,
                     upstream_conf="max_connections_per_account = 3\n")
        body = na.wbxml(FOLDERSYNC_0)
        dlog = os.path.join(s.dc.d, "dovecot.log")
        statuses = []
        refused = 0
        rounds = 0
        # Rounds of eight at once until Dovecot has refused a connection (the case
        # this test is about), at most ten: on a loaded machine one round may be
        # served over a single connection.
        while rounds < 10 and (rounds < 3 or refused == 0):
            statuses += at_once(s.phone, ["USERIP%d" % i for i in range(8)], body)
            rounds += 1
            with open(dlog) as f:
                refused = sum(1 for line in f if "Maximum number of connections" in line)
        expect(sorted(statuses) == [200] * (8 * rounds),
               "%d FolderSyncs of one account over Dovecot's cap of 1: all 200 (%s)" %
               (8 * rounds, sorted(set(statuses))))
        expect(refused >= 1, "Dovecot refused %d connections over its cap (%d rounds)" %
               (refused, rounds))
        log = s.log()
        expect("refused the login" not in log and "status=401" not in log,
               "abqd did not take the refusal for a wrong password")
        st, h, n = s.phone.post(s.phone.query("FolderSync"), body)
        expect(st == 200, "a phone still syncs afterwards (HTTP %d)" % st)
        expect(s.proc.poll() is None, "abqd still runs")
    except (Failure, AssertionError) as e:
        print("FAIL  %s" % e)
        if s is not None and os.path.exists(s.stderr):
            sys.stdout.write("".join(s.log().splitlines(True)[-30:]))
        ok = False
    finally:
        if s is not None:
            s.stop()
        if not a.keep:
            shutil.rmtree(d, ignore_errors=True)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
