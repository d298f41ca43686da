#!/usr/bin/env python3
"""The outbox sender (notice-sendd) against a real OpenSMTPD on loopback.

OpenSMTPD delivers every recipient into one Maildir (as user "mail") that
this test reads and parses with Python's email module. Scenarios: one notice
delivered exactly once with the right headers and body; the relay stopped
(attempts grow, next_attempt moves), then started (delivered exactly once);
the sender killed with SIGKILL mid-queue and restarted (every notice delivered,
at most the one in flight twice as the same message: sender.c's window).
Needs root (OpenSMTPD) and the opensmtpd package.
"""
import argparse, email, email.policy, os, pwd, shutil, signal, socket, sqlite3
import subprocess, sys, tempfile, time

A = None
TMP = None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait(cond, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


class Relay:
    def __init__(self, port):
        self.port, self.proc = port, None
        self.maildir = os.path.join(TMP, "Maildir")
        os.makedirs(self.maildir, exist_ok=True)
        mail = pwd.getpwnam("mail")
        os.chown(self.maildir, mail.pw_uid, mail.pw_gid)
        os.chmod(TMP, 0o755)
        self.conf = os.path.join(TMP, "smtpd.conf")
        with open(self.conf, "w") as f:
            f.write('table vusers { "@" = "mail" }\n'
                    "listen on 127.0.0.1 port %d\n"
                    'action "local" maildir "%s" virtual <vusers> user mail\n'
                    'match from any for any action "local"\n' % (port, self.maildir))
        os.chmod(self.conf, 0o644)

    def start(self):
        """Start smtpd and wait until it listens. OpenSMTPD's control socket has a
        fixed path: an smtpd still exiting (a previous test's) makes a new one quit
        at start, so one that exits before listening is started again."""
        self.log = open(os.path.join(TMP, "smtpd.log"), "ab")

        def up():
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return True
            except OSError:
                return False
        for _ in range(10):
            self.proc = subprocess.Popen([A.smtpd, "-d", "-f", self.conf], stdout=self.log,
                                         stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if up():
                    return
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
            else:
                raise AssertionError("smtpd did not listen within 20 s")
            time.sleep(1)
        raise AssertionError("smtpd exited at start 10 times (see smtpd.log)")

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(20)
            self.proc = None
            self.log.close()

    def messages(self):
        out = []
        for sub in ("new", "cur"):
            d = os.path.join(self.maildir, sub)
            if os.path.isdir(d):
                for n in sorted(os.listdir(d)):
                    with open(os.path.join(d, n), "rb") as f:
                        out.append(email.message_from_bytes(f.read(), policy=email.policy.default))
        return out


def sendd(*args, check=True):
    r = subprocess.run([A.sendd] + list(args), capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError("notice-sendd %s: %s" % (args[0], r.stderr))
    return r.stdout.strip()


def rows(db):
    c = sqlite3.connect(db)
    try:
        return c.execute("SELECT id, state, attempts, next_attempt, last_error FROM outbox "
                         "ORDER BY id").fetchall()
    finally:
        c.close()


def sql(db, stmt):
    c = sqlite3.connect(db)
    c.execute(stmt)
    c.commit()
    c.close()


def main():
    global A, TMP
    p = argparse.ArgumentParser()
    p.add_argument("--sendd", required=True)
    p.add_argument("--smtpd", default="")
    A = p.parse_args()
    if not A.smtpd or not os.path.exists(A.smtpd) or os.geteuid() != 0:
        print("FAIL: this test needs root and OpenSMTPD (scripts/install-deps.sh installs it)")
        return 1
    TMP = tempfile.mkdtemp(prefix="abq-notice-smtp-")
    db = os.path.join(TMP, "abq.db")
    url = "sqlite:" + db
    port = free_port()
    smtp = "smtp://127.0.0.1:%d" % port
    relay = Relay(port)
    sender = None
    frm = "ABQ <mobile-admin@example.com>"
    passed = 0
    try:
        sendd("init", url)
        relay.start()

        # 1. One notice, delivered exactly once, headers and body intact.
        nid = sendd("queue", url, frm, "alice@example.com", "Ihr Gerät ist gesperrt",
                    "Gerät: iPhone\nabqctl mobile abq allow DEV1 account alice@example.com\n")
        sender = subprocess.Popen([A.sendd, "run", url, smtp, frm, "1"])
        wait(lambda: rows(db)[0][1] == "sent", 30, "notice %s sent" % nid)
        wait(lambda: len(relay.messages()) == 1, 30, "delivery")
        time.sleep(1.5)
        msgs = relay.messages()
        assert len(msgs) == 1, len(msgs)
        m = msgs[0]
        assert m["Subject"] == "Ihr Gerät ist gesperrt", m["Subject"]
        assert m["To"] == "alice@example.com"
        assert "mobile-admin@example.com" in m["From"]
        assert m["Auto-Submitted"] == "auto-generated"
        assert m["Message-ID"].endswith("@example.com>"), m["Message-ID"]
        assert m["Date"] is not None and m["MIME-Version"] == "1.0"
        assert m.get_content_type() == "multipart/alternative"
        plain = m.get_body(("plain",)).get_content()
        html = m.get_body(("html",)).get_content()
        assert "Gerät: iPhone" in plain and "abqctl mobile abq allow DEV1" in plain, plain
        assert "Gerät: iPhone" in html
        passed += 1
        print("ok 1 delivered once with headers and body")

        # 2. Relay down: attempts grow, next_attempt moves.
        relay.stop()
        ids = [sendd("queue", url, frm, "bob%d@example.com" % i, "Blocked", "body %d" % i)
               for i in range(2)]
        wait(lambda: all(r[2] >= 1 for r in rows(db)[1:]), 30, "a failed attempt")
        r1 = rows(db)[1]
        assert r1[1] == "queued" and r1[3] > time.time() + 10 and r1[4], r1
        sql(db, "UPDATE outbox SET next_attempt = 0 WHERE state = 'queued'")
        wait(lambda: all(r[2] >= 2 for r in rows(db)[1:]), 30, "a second attempt")
        r2 = rows(db)[1]
        assert r2[1] == "queued" and r2[3] - r1[3] >= 25, (r1, r2)
        passed += 1
        print("ok 2 relay down: attempts %d -> %d, next_attempt +%ds" % (r1[2], r2[2],
                                                                            r2[3] - r1[3]))

        # 3. Relay up again: each delivered exactly once.
        relay.start()
        sql(db, "UPDATE outbox SET next_attempt = 0 WHERE state = 'queued'")
        wait(lambda: all(r[1] == "sent" for r in rows(db)), 30, "all sent")
        wait(lambda: len(relay.messages()) == 3, 30, "3 deliveries")
        time.sleep(2)
        tos = sorted(str(m["To"]) for m in relay.messages())
        assert tos == ["alice@example.com", "bob0@example.com", "bob1@example.com"], tos
        passed += 1
        print("ok 3 relay back: delivered exactly once")

        # 4. SIGKILL mid-queue, restart: every notice exactly once.
        sender.send_signal(signal.SIGTERM)
        sender.wait(30)
        n = 30
        for i in range(n):
            sendd("queue", url, frm, "kill%d@example.com" % i, "Quarantined", "k %d" % i)
        sender = subprocess.Popen([A.sendd, "run", url, smtp, frm, "1"])
        wait(lambda: any(r[1] == "sent" for r in rows(db)[3:]), 30, "the first sends")
        sender.kill()
        sender.wait()
        sent_at_kill = sum(1 for r in rows(db)[3:] if r[1] == "sent")
        sender = subprocess.Popen([A.sendd, "run", url, smtp, frm, "1"])
        wait(lambda: all(r[1] == "sent" for r in rows(db)), 60, "all sent after restart")
        wait(lambda: len(relay.messages()) >= 3 + n, 30, "deliveries")
        time.sleep(2)
        msgs = relay.messages()
        tos = [str(m["To"]) for m in msgs if str(m["To"]).startswith("kill")]
        # The sender's one window (sender.c): the relay accepted a message and
        # the kill landed before the "sent" mark was committed. That notice is
        # sent again after the restart, as the same message (same Message-ID).
        # So: every notice at least once, at most ONE delivered twice, and a
        # second copy only ever byte-for-byte the same message.
        ids_seen = [m["Message-ID"] for m in msgs]
        dups = {i: ids_seen.count(i) for i in set(ids_seen) if ids_seen.count(i) > 1}
        assert len(dups) <= 1 and all(c == 2 for c in dups.values()), \
            "duplicates beyond the one window: %r" % dups
        for mid in dups:
            copies = [m for m in msgs if m["Message-ID"] == mid]
            # The relay adds its own Received lines; what the sender wrote must match.
            for h in ("From", "To", "Subject", "Date", "Message-ID"):
                assert str(copies[0][h]) == str(copies[1][h]), "a duplicate's %s differs" % h
            bodies = [c.get_body(preferencelist=("plain",)).get_content() for c in copies]
            assert bodies[0] == bodies[1], "a duplicate's text differs"
        assert sorted(set(tos)) == sorted("kill%d@example.com" % i for i in range(n)), \
            sorted(tos)
        assert len(msgs) == 3 + n + len(dups), len(msgs)
        passed += 1
        print("ok 4 SIGKILL after %d of %d sent, restart: each delivered once%s" %
              (sent_at_kill, n, " (one in the accepted-not-marked window twice)"
               if dups else ""))
    finally:
        if sender and sender.poll() is None:
            sender.send_signal(signal.SIGTERM)
            try:
                sender.wait(30)
            except subprocess.TimeoutExpired:
                sender.kill()
        relay.stop()
        print("%d passed, %d failed" % (passed, 4 - passed))
        if passed == 4:
            shutil.rmtree(TMP, ignore_errors=True)
        else:
            print("kept", TMP)
    return 0


if __name__ == "__main__":
    sys.exit(main())
