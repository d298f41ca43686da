#!/usr/bin/env python3
"""Native mode against a mail server that refuses connections over its own cap.

A private Dovecot (bench/native_attach.py's Setup) whose
`mail_max_userip_connections` is 1, abqd in front of it with
`max_connections_per_account = 3`: abqd will try more connections for the
account than the server takes. Eight phones of the account ask FolderSync at
once, three times over: every answer is 200 (none is a 401 as if the password
were wrong, none a 5xx), Dovecot's log shows that it did refuse connections
(so the case was met), and abqd's log does not take the refusal for a wrong
password; afterwards a phone still syncs.

  test_userip_live.py --abqd build/src/daemon/abqd --abqctl build/src/ctl/abqctl
"""
import argparse
import os
import shutil
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))
import native_attach as na  # noqa: E402
from checks import Failure, expect  # noqa: E402

FOLDERSYNC_0 = '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0</SyncKey></FolderSync>'


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
        statuses = []
        for _ in range(3):
            phones = [na.Phone(s.phone.port, "USERIP%d" % i) for i in range(8)]
            ths = [threading.Thread(target=lambda ph=ph: statuses.append(
                ph.post(ph.query("FolderSync"), body, timeout=60)[0])) for ph in phones]
            for th in ths:
                th.start()
            for th in ths:
                th.join(90)
        expect(sorted(statuses) == [200] * 24,
               "24 FolderSyncs of one account over Dovecot's cap of 1: all 200 (%s)" %
               sorted(set(statuses)))
        with open(os.path.join(s.dc.d, "dovecot.log")) as f:
            refused = sum(1 for line in f if "Maximum number of connections" in line)
        expect(refused >= 1, "Dovecot refused %d connections over its cap" % refused)
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
