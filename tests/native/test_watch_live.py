#!/usr/bin/env python3
"""Push for native mode (src/native/watch.c) against a real Dovecot.

A private Dovecot as tests/imap/test_imap_live.py starts it (its Dovecot
class, with the mailbox list index NOTIFY needs), imaps:// with a CA of its
own; tests/native/watch_driver runs the watcher on a libevent loop, driven
on stdin. Two rounds on the same mail: Dovecot as configured (NOTIFY), then
restarted with NOTIFY taken out of imap_capability (the IDLE path). Each
round:

  1. a subscription to INBOX and Work: an APPEND by another connection to
     INBOX and to Work, 20 deliveries: the callback within 2 s (median and
     max printed);
  2. a flag change and an expunge in Work: a callback each;
  3. an APPEND to an unwatched folder: no callback; a folder created,
     renamed, deleted by another connection: a callback (NOTIFY MailboxName;
     under IDLE the sweep's LIST, within the sweep interval);
  4. a second subscription of the account: one connection with NOTIFY (the
     driver's count and `doveadm who`), both subscriptions called; with
     NOTIFY, a third one that adds a folder to the set: the folders watched
     before and the new one are reported;
  5. both unsubscribed: the connections stay for the linger, then close;
  6. Dovecot restarted under a subscription: reconnected, every watched
     mailbox reported, then a delivery reported again;
  7. a wrong password: one error callback, one failed login in Dovecot's
     log (no retry storm).
The IDLE round also runs a watcher capped at one connection: INBOX IDLEd,
Work covered by the STATUS sweep.

  test_watch_live.py --driver build/tests/native/watch-driver [--keep]
"""
import argparse
import imaplib
import os
import queue
import re
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "imap"))
import test_imap_live as L  # noqa: E402  (Dovecot, run, USER, PASSWORD)

LINGER = 2
SWEEP = 2
DELIVERIES = 20


class Failure(Exception):
    pass


def ok(msg):
    print("ok    %s" % msg, flush=True)


def expect(cond, msg):
    if not cond:
        raise Failure(msg)


class Driver:
    """watch-driver as a child: commands in, events out (a reader thread)."""

    def __init__(self, argv):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=sys.stderr, text=True, bufsize=1)
        self.q = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.q.put(line.rstrip("\n"))
        self.q.put(None)

    def send(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def wait(self, pattern, timeout):
        """The first line matching pattern within timeout (others are kept in seen)."""
        end = time.time() + timeout
        rx = re.compile(pattern)
        while True:
            left = end - time.time()
            if left <= 0:
                return None
            try:
                line = self.q.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                raise Failure("watch-driver exited")
            if rx.search(line):
                return line
            self.seen.append(line)

    seen = []

    def drain(self, quiet=0.4):
        """Lines until quiet seconds pass without one."""
        out = []
        while True:
            try:
                line = self.q.get(timeout=quiet)
            except queue.Empty:
                return out
            if line is None:
                raise Failure("watch-driver exited")
            out.append(line)

    def state(self, account=L.USER):
        self.send("state " + account)
        line = self.wait(r"^state ", 5)
        expect(line is not None, "no state answer")
        return dict(kv.split("=") for kv in line.split()[2:])

    def wait_watching(self, timeout=10, account=L.USER):
        end = time.time() + timeout
        while time.time() < end:
            st = self.state(account)
            if st["watching"] == "1":
                return st
            time.sleep(0.05)
        raise Failure("the watcher is not watching after %ss" % timeout)

    def close(self):
        """Quit; the driver's exit status (valgrind's or the sanitizers' errors)."""
        try:
            self.send("quit")
            return self.p.wait(60)
        except Exception:
            self.p.kill()
            return -1


class Mail:
    """Another client changing the mailbox (imaplib over imaps://)."""

    def __init__(self, dc):
        self.dc = dc
        self.ctx = ssl.create_default_context(cafile=dc.ca)
        self.m = None

    def conn(self):
        if self.m is None:
            self.m = imaplib.IMAP4_SSL("127.0.0.1", self.dc.imaps_port, ssl_context=self.ctx)
            self.m.login(L.USER, L.PASSWORD)
        return self.m

    def append(self, mbox, subject="push test"):
        msg = ("From: Bob <bob@example.com>\r\nTo: alice@example.com\r\n"
               "Subject: %s\r\n\r\nHello.\r\n" % subject).encode()
        typ, _ = self.conn().append(mbox, None, None, msg)
        expect(typ == "OK", "APPEND to %s failed" % mbox)

    def store(self, mbox, flags):
        m = self.conn()
        m.select(mbox)
        typ, _ = m.uid("STORE", "1:*", "+FLAGS", flags)
        expect(typ == "OK", "STORE failed")
        m.close()

    def expunge_one(self, mbox):
        m = self.conn()
        m.select(mbox)
        typ, data = m.uid("SEARCH", "ALL")
        uid = data[0].split()[-1].decode()
        m.uid("STORE", uid, "+FLAGS", "(\\Deleted)")
        m.expunge()
        m.close()

    def caps(self):
        typ, data = self.conn().capability()
        return data[0].decode().split()

    def logout(self):
        if self.m is not None:
            try:
                self.m.logout()
            except Exception:
                pass
            self.m = None


def imap_sessions(dc):
    """IMAP sessions of the user in Dovecot (doveadm who), 0 when none."""
    p = subprocess.run(["doveadm", "-c", dc.conf, "who", "-1"], capture_output=True, text=True)
    n = 0
    for line in p.stdout.splitlines():
        f = line.split()
        if len(f) >= 2 and f[0] == L.USER and f[1] == "imap":
            n += 1
    return n


def failed_logins(dc):
    try:
        with open(os.path.join(dc.d, "dovecot.log")) as f:
            return sum(1 for line in f if "auth failed" in line)
    except OSError:
        return 0


def wait_sessions(dc, want, timeout):
    end = time.time() + timeout
    n = imap_sessions(dc)
    while n != want and time.time() < end:
        time.sleep(0.1)
        n = imap_sessions(dc)
    return n


def deliver(drv, mail, sid, mbox):
    """APPEND to mbox; the latency to the callback, or None."""
    drv.drain(0.2)
    t0 = time.time()
    mail.append(mbox)
    line = drv.wait(r"^changed %d %s " % (sid, re.escape(mbox)), 5)
    if line is None:
        return None
    return float(line.split()[3]) - t0


def round_(dc, drv_argv, notify):
    label = "NOTIFY" if notify else "IDLE"
    mail = Mail(dc)
    drv = Driver(drv_argv + ["3", str(SWEEP), str(LINGER)])
    try:
        # 1. deliveries to INBOX and Work
        drv.send("sub 1 %s %s INBOX,Work" % (L.USER, L.PASSWORD))
        st = drv.wait_watching()
        expect(st["notify"] == ("1" if notify else "0"),
               "%s: the watcher's path is notify=%s" % (label, st["notify"]))
        want_conns = "1" if notify else "2"
        expect(st["conns"] == want_conns, "%s: %s connections, want %s" %
               (label, st["conns"], want_conns))
        ok("%s: watching INBOX and Work on %s connection(s)" % (label, st["conns"]))
        lat = []
        for i in range(DELIVERIES):
            mbox = "INBOX" if i % 2 == 0 else "Work"
            d = deliver(drv, mail, 1, mbox)
            expect(d is not None, "%s: no callback for an APPEND to %s" % (label, mbox))
            lat.append(d)
        print("      %s: %d deliveries, callback after median %.0f ms, max %.0f ms" %
              (label, len(lat), statistics.median(lat) * 1000, max(lat) * 1000), flush=True)
        expect(max(lat) < 2.0, "%s: a delivery took %.2f s" % (label, max(lat)))
        ok("%s: every delivery reported within 2 s" % label)

        # 2. flag change and expunge in Work
        drv.drain(0.3)
        mail.store("Work", "(\\Flagged)")
        expect(drv.wait(r"^changed 1 Work ", 3), "%s: no callback for a flag change" % label)
        ok("%s: flag change reported" % label)
        drv.drain(0.3)
        mail.expunge_one("Work")
        expect(drv.wait(r"^changed 1 Work ", 3), "%s: no callback for an expunge" % label)
        ok("%s: expunge reported" % label)

        # 3. an unwatched folder
        drv.drain(0.3)
        mail.append("Other")
        got = drv.drain(2.5)
        expect(not [x for x in got if x.startswith("changed")],
               "%s: a callback for an unwatched folder: %s" % (label, got))
        ok("%s: an unwatched folder gives no callback" % label)

        # 3b. A folder created, renamed and deleted elsewhere: the hierarchy changed,
        # the watched mailboxes are reported (a held Ping reruns): NOTIFY's MailboxName
        # at once; under IDLE the sweep's LIST, within the sweep interval
        within = 3 if notify else SWEEP + 1.5
        for what, cmd in (("created", ("CREATE", "Hier")),
                          ("renamed", ("RENAME", "Hier", "Hier2")),
                          ("deleted", ("DELETE", "Hier2"))):
            drv.drain(0.3)
            t0 = time.monotonic()
            typ, _ = mail.conn()._simple_command(*cmd)
            expect(typ == "OK", "%s: %s failed" % (label, cmd[0]))
            expect(drv.wait(r"^changed 1 INBOX ", within),
                   "%s: no callback for a folder %s elsewhere within %.1f s" % (label, what, within))
            ok("%s: a folder %s elsewhere reported after %.0f ms (%s)" %
               (label, what, (time.monotonic() - t0) * 1000,
                "NOTIFY MailboxName" if notify else "the sweep's LIST"))

        # 3c. NOTIFY: a watched folder that another connection has selected (as a
        # phone's Sync leaves it on a pooled connection), renamed elsewhere: reported
        # within the sweep interval (Dovecot 2.3.19 may send no MailboxName for it, as
        # e2e_native's fixture showed; then the sweep's LIST sees it)
        if notify:
            typ, _ = mail.conn()._simple_command("CREATE", "Opened")
            expect(typ == "OK", "%s: CREATE failed" % label)
            other = imaplib.IMAP4_SSL("127.0.0.1", dc.imaps_port, ssl_context=mail.ctx)
            other.login(L.USER, L.PASSWORD)
            typ, _ = other.select("Opened")
            expect(typ == "OK", "%s: SELECT failed" % label)
            drv.send("sub 5 %s %s Opened" % (L.USER, L.PASSWORD))
            drv.wait(r"^subscribed 5", 5)
            drv.wait_watching()
            drv.drain(SWEEP + 1.5)  # a sweep that knows Opened
            t0 = time.monotonic()
            typ, _ = mail.conn()._simple_command("RENAME", "Opened", "Opened2")
            expect(typ == "OK", "%s: RENAME failed" % label)
            other.logout()
            expect(drv.wait(r"^changed 5 Opened ", SWEEP * 2 + 1.5),
                   "%s: no callback for a selected folder renamed elsewhere within %.1f s" %
                   (label, SWEEP * 2 + 1.5))
            ok("%s: a selected folder renamed elsewhere reported after %.0f ms" %
               (label, (time.monotonic() - t0) * 1000))
            drv.send("unsub 5")
            drv.wait(r"^unsubscribed 5", 5)
            mail.conn()._simple_command("DELETE", "Opened2")
            drv.drain(1.0)

        # 4. a second subscription of the account
        mail.logout()
        drv.send("sub 2 %s %s INBOX" % (L.USER, L.PASSWORD))
        drv.wait(r"^subscribed 2", 5)
        st = drv.wait_watching()
        expect(st["conns"] == want_conns and st["watchers"] == "1",
               "%s: two subscriptions hold %s connections (%s watchers)" %
               (label, st["conns"], st["watchers"]))
        n = wait_sessions(dc, int(want_conns), 3)
        expect(n == int(want_conns), "%s: doveadm who shows %d sessions, want %s" %
               (label, n, want_conns))
        d = deliver(drv, mail, 1, "INBOX")
        expect(d is not None, "%s: subscription 1 not called" % label)
        got = drv.seen + drv.drain(0.5)
        drv.seen.clear()
        ok2 = [x for x in got if x.startswith("changed 2 INBOX")]
        if not ok2:
            ok2 = drv.wait(r"^changed 2 INBOX ", 2)
        expect(ok2, "%s: subscription 2 not called" % label)
        mail.logout()
        ok("%s: two subscriptions share %s connection(s) (doveadm who: %d), both called" %
           (label, want_conns, n))

        # 4b. NOTIFY: a subscription that grows the watched set (NOTIFY SET sent
        # again on the connection): the mailboxes watched before and the new one
        # are all still reported
        if notify:
            drv.send("sub 4 %s %s Other" % (L.USER, L.PASSWORD))
            drv.wait(r"^subscribed 4", 5)
            drv.wait_watching()
            drv.drain(0.5)
            for sid, mbox in ((1, "INBOX"), (4, "Other")):
                d = deliver(drv, mail, sid, mbox)
                expect(d is not None, "%s: no callback for an APPEND to %s once the watched "
                       "set grew" % (label, mbox))
            mail.logout()
            drv.send("unsub 4")
            drv.wait(r"^unsubscribed 4", 5)
            ok("%s: the watched set grown: INBOX and the added folder still reported" % label)

        # 5. unsubscribe all: the linger, then closed
        drv.send("unsub 1")
        drv.send("unsub 2")
        drv.wait(r"^unsubscribed 2", 5)
        st = drv.state()
        expect(st["conns"] == want_conns, "%s: closed before the linger" % label)
        time.sleep(LINGER / 2)
        expect(imap_sessions(dc) == int(want_conns), "%s: sessions gone before the linger" %
               label)
        time.sleep(LINGER / 2 + 0.5)
        st = drv.state()
        expect(st["conns"] == "0" and st["watchers"] == "0",
               "%s: still %s connections after the linger" % (label, st["conns"]))
        n = wait_sessions(dc, 0, 3)
        expect(n == 0, "%s: doveadm who still shows %d sessions" % (label, n))
        ok("%s: connections held for the %d s linger, then closed" % (label, LINGER))

        # 6. Dovecot restarted under a subscription
        drv.send("sub 3 %s %s INBOX,Work" % (L.USER, L.PASSWORD))
        drv.wait_watching()
        drv.drain(0.3)
        dc.stop()
        time.sleep(0.5)
        dc.start()
        t0 = time.time()
        a = drv.wait(r"^changed 3 INBOX ", 15)
        b = a and drv.wait(r"^changed 3 Work ", 5)
        expect(a and b, "%s: no callback for every mailbox after the restart" % label)
        print("      %s: reported after the restart in %.1f s" % (label, time.time() - t0))
        drv.wait_watching()
        d = deliver(drv, mail, 3, "INBOX")
        expect(d is not None and d < 2.0, "%s: no delivery reported after the restart" % label)
        mail.logout()
        drv.send("unsub 3")
        ok("%s: Dovecot restarted: reconnected, every mailbox reported, pushing again" % label)

        # 7. a wrong password (once the account's watcher is gone: a running
        # watcher keeps the password it logged in with): one error, one failed login
        end = time.time() + LINGER + 3
        while drv.state()["watchers"] != "0" and time.time() < end:
            time.sleep(0.1)
        before = failed_logins(dc)
        drv.send("sub 4 %s wrong-password INBOX" % L.USER)
        line = drv.wait(r"^error 4 ", 10)
        expect(line and line.split()[2] == "auth", "%s: no auth error: %s" % (label, line))
        got = drv.drain(4)
        expect(not [x for x in got if x.startswith("error")],
               "%s: more errors: %s" % (label, got))
        after = failed_logins(dc)
        expect(after - before == 1, "%s: %d failed logins in Dovecot's log" %
               (label, after - before))
        st = drv.state()
        drv.send("unsub 4")
        ok("%s: a wrong password: one error callback, one failed login, %s connections" %
           (label, st["conns"]))
    finally:
        mail.logout()
        rc = drv.close()
    expect(rc == 0, "%s: watch-driver exited with %d" % (label, rc))

    if notify:
        return
    # The IDLE path capped at one connection: INBOX IDLEd, Work swept.
    drv = Driver(drv_argv + ["1", str(SWEEP), str(LINGER)])
    try:
        drv.send("sub 1 %s %s INBOX,Work" % (L.USER, L.PASSWORD))
        st = drv.wait_watching()
        expect(st["conns"] == "1", "sweep: %s connections with a cap of 1" % st["conns"])
        time.sleep(0.5)  # the first sweep's counts
        d = deliver(drv, mail, 1, "INBOX")
        expect(d is not None and d < 2.0, "sweep: INBOX not reported within 2 s")
        d2 = deliver(drv, mail, 1, "Work")
        expect(d2 is not None and d2 < SWEEP + 1.5, "sweep: Work not reported by the sweep")
        ok("IDLE capped at 1 connection: INBOX after %.0f ms, Work (swept every %d s) after "
           "%.0f ms" % (d * 1000, SWEEP, d2 * 1000))
    finally:
        mail.logout()
        rc = drv.close()
    expect(rc == 0, "sweep: watch-driver exited with %d" % rc)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--driver", required=True)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="abq-watch-")
    dc = L.Dovecot(d)
    with open(dc.conf, "a") as f:
        f.write("# NOTIFY (RFC 5465) needs the mailbox list index\nmailbox_list_index = yes\n")
    # ABQ_WATCH_WRAP: a command the driver runs under (valgrind in the -valgrind test).
    argv = os.environ.get("ABQ_WATCH_WRAP", "").split() + [a.driver, "imaps://127.0.0.1:%d" % dc.imaps_port, dc.ca]
    ok_all = True
    try:
        dc.start()
        for mbox in ("Work", "Other"):
            L.run(["doveadm", "-c", dc.conf, "mailbox", "create", "-u", L.USER, mbox])
        mail = Mail(dc)
        caps = mail.caps()
        mail.logout()
        expect("NOTIFY" in caps, "Dovecot offers no NOTIFY: %s" % caps)
        round_(dc, argv, True)
        # The same Dovecot without NOTIFY in its capabilities: the IDLE path.
        dc.stop()
        with open(dc.conf, "a") as f:
            f.write("protocol imap {\n  imap_capability = %s\n}\n" %
                    " ".join(c for c in caps if c.upper() != "NOTIFY"))
        dc.start()
        mail = Mail(dc)
        caps2 = mail.caps()
        mail.logout()
        expect("NOTIFY" not in caps2, "NOTIFY still offered: %s" % caps2)
        round_(dc, argv, False)
    except Failure as e:
        print("FAIL  %s" % e, flush=True)
        ok_all = False
    finally:
        dc.stop()
        if not a.keep:
            shutil.rmtree(d, ignore_errors=True)
    print("PASS" if ok_all else "FAIL")
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
