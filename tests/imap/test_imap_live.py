#!/usr/bin/env python3
"""The IMAP client (src/imap) against a real Dovecot, through tests/imap/imap_probe.

The test starts a private Dovecot rather than the e2e fixture (which also
starts PostgreSQL, memcached and SOGo, far more than an IMAP client needs):
its configuration in a temporary folder, ports above 1024 chosen free, a CA
and a server certificate of its own (so that the certificate check is real),
STARTTLS on imap:// with plaintext logins refused before it
(disable_plaintext_auth), TLS from the first byte on imaps://. Running as
root, Dovecot's own users run it and the Maildirs belong to "mail", as in the
fixture; as another user, that user does everything.

The INBOX is seeded (doveadm save) with a plain message, a message with a PDF
attachment and one with a 6 MiB attachment; the probe logs in, lists the
folders with SPECIAL-USE, selects INBOX with CONDSTORE, fetches flags,
envelopes and body structures, streams the large message's BODY[], IDLEs
until a second connection APPENDs, logs out and tries a wrong password.
The same over imaps:// and imap:// + STARTTLS; then a run that trusts only
the system store must fail the certificate check.
"""
import argparse
import base64
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

USER, PASSWORD = "alice", "s3cret-pw"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def make_certs(d):
    """A CA and a server certificate for 127.0.0.1 and localhost signed by it."""
    ca_key, ca = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
    key, csr, crt = (os.path.join(d, n) for n in ("server.key", "server.csr", "server.pem"))
    ext = os.path.join(d, "ext.cnf")
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key,
         "-out", ca, "-days", "2", "-subj", "/CN=abqd imap test CA"])
    run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
         "-subj", "/CN=localhost"])
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
         "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext])
    return ca, crt, key


def messages():
    plain = ("From: Bob <bob@example.com>\nTo: alice@example.com\n"
             "Subject: plain hello\nDate: Mon, 1 Dec 2026 10:00:00 +0000\n"
             "Message-ID: <p1@example.com>\n\nHello Alice.\n")
    pdf = base64.encodebytes(b"%PDF-1.4 small" * 50).decode()
    attach = ("From: Carol <carol@example.com>\nTo: alice@example.com\n"
              "Subject: report attached\nDate: Mon, 1 Dec 2026 11:00:00 +0000\n"
              "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n\n"
              "--b1\nContent-Type: text/plain; charset=utf-8\n\nSee the report.\n"
              "--b1\nContent-Type: application/pdf; name=\"report.pdf\"\n"
              "Content-Disposition: attachment; filename=\"report.pdf\"\n"
              "Content-Transfer-Encoding: base64\n\n" + pdf + "--b1--\n")
    blob = base64.encodebytes(os.urandom(6 * 1024 * 1024)).decode()
    big = ("From: Dave <dave@example.com>\nTo: alice@example.com\n"
           "Subject: big one\nDate: Mon, 1 Dec 2026 12:00:00 +0000\n"
           "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b2\"\n\n"
           "--b2\nContent-Type: text/plain\n\nBig.\n"
           "--b2\nContent-Type: application/octet-stream; name=\"big.bin\"\n"
           "Content-Disposition: attachment; filename=\"big.bin\"\n"
           "Content-Transfer-Encoding: base64\n\n" + blob + "--b2--\n")
    return [plain, attach, big]


class Dovecot:
    def __init__(self, d):
        self.d = d
        self.imap_port, self.imaps_port = free_port(), free_port()
        self.conf = os.path.join(d, "dovecot.conf")
        root = os.geteuid() == 0
        me = pwd.getpwuid(os.geteuid()).pw_name
        owner = "mail" if root else me
        uid, gid = pwd.getpwnam(owner).pw_uid, pwd.getpwnam(owner).pw_gid
        os.makedirs(os.path.join(d, "run"))
        os.makedirs(os.path.join(d, "state"))
        os.makedirs(os.path.join(d, "mail"))
        if root:
            shutil.chown(os.path.join(d, "mail"), uid, gid)
            os.chmod(d, 0o755)
        ca, crt, key = make_certs(d)
        self.ca = ca
        users = os.path.join(d, "users")
        with open(users, "w") as f:
            f.write(f"{USER}:{{PLAIN}}{PASSWORD}:{uid}:{gid}::{d}/mail/{USER}\n")
        os.chmod(users, 0o644)
        internal = "" if root else f"default_internal_user = {me}\ndefault_login_user = {me}\n"
        with open(self.conf, "w") as f:
            f.write(f"""# abqd tests/imap/test_imap_live.py
protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
{internal}ssl = yes
ssl_cert = <{crt}
ssl_key = <{key}
disable_plaintext_auth = yes
auth_mechanisms = plain login
first_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%n {users}
}}
userdb {{
  driver = passwd-file
  args = username_format=%n {users}
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Drafts {{
    auto = subscribe
    special_use = \\Drafts
  }}
  mailbox Sent {{
    auto = subscribe
    special_use = \\Sent
  }}
  mailbox Trash {{
    auto = subscribe
    special_use = \\Trash
  }}
  mailbox Junk {{
    auto = subscribe
    special_use = \\Junk
  }}
  mailbox "Éléments envoyés" {{
    auto = subscribe
  }}
}}
protocol imap {{
  mail_max_userip_connections = 20
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1 127.0.0.2
    port = {self.imaps_port}
    ssl = yes
  }}
}}
service doveadm {{
  inet_listener {{
    port = 0
  }}
}}
""")

    def start(self):
        # Its daemon keeps whatever it was given as stdout open: not a pipe.
        subprocess.run(["dovecot", "-c", self.conf], check=True, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.imaps_port), 0.2).close()
                socket.create_connection(("127.0.0.1", self.imap_port), 0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("dovecot did not listen; see " + self.d + "/dovecot.log")

    def seed(self):
        for i, m in enumerate(messages()):
            run(["doveadm", "-c", self.conf, "save", "-u", USER, "-m", "INBOX"], input=m)
        run(["doveadm", "-c", self.conf, "flags", "add", "-u", USER, "\\Seen", "mailbox",
             "INBOX", "uid", "1"])

    def stop(self):
        """Stop it as a service manager does: every process of its group (the master
        and the imap processes serving open connections, which otherwise may outlive
        the master for seconds), and wait until they are all gone."""
        pidf = os.path.join(self.d, "run", "master.pid")
        try:
            with open(pidf) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return
        try:
            group = os.getpgid(pid) == pid  # the daemon leads its own group
        except OSError:
            return
        kill = os.killpg if group else os.kill
        try:
            kill(pid, signal.SIGTERM)
            for _ in range(100):
                time.sleep(0.1)
                kill(pid, 0)
            kill(pid, signal.SIGKILL)
            for _ in range(50):
                time.sleep(0.1)
                kill(pid, 0)
        except OSError:
            pass


def check(out, want, label):
    missing = [w for w in want if w not in out]
    if missing:
        print(f"--- {label}: output\n{out}\n--- missing: {missing}")
        return False
    print(f"ok: {label}")
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--probe", required=True)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    # ABQ_IMAP_WRAP: a command the probe runs under (valgrind in the -valgrind test).
    wrap = os.environ.get("ABQ_IMAP_WRAP", "").split()
    probe = wrap + [a.probe]
    d = tempfile.mkdtemp(prefix="abq-imap-")
    dc = Dovecot(d)
    ok = True
    try:
        dc.start()
        dc.seed()
        want = [
            "tls yes", "caps IMAP4REV1", " IDLE", " CONDSTORE", " QRESYNC", " SASL-IR",
            "enabled CONDSTORE QRESYNC",
            "list INBOX delim=/", "list Sent delim=/ \\Sent", "list Drafts delim=/ \\Drafts",
            "list Trash delim=/ \\Trash", "list Junk delim=/ \\Junk",
            "list Éléments envoyés delim=/",
            "select exists=3 uidvalidity=yes highestmodseq=yes",
            "fetch uid=1 seen=yes modseq=yes", "subject=plain hello from=bob@example.com",
            "parts: 1:text/plain", "fetch uid=2 seen=no",
            "subject=report attached from=carol@example.com parts: 1:text/plain "
            "2:application/pdf(attachment report.pdf)",
            "fetch uid=3", "2:application/octet-stream(attachment big.bin)",
            "body uid=3 streamed=", " match",
            "idle started", "idle woke: exists 3 -> 4",
            "wrong password: error=auth",
        ]
        for label, url in (("imaps", f"imaps://127.0.0.1:{dc.imaps_port}"),
                           ("starttls", f"imap://localhost:{dc.imap_port}")):
            p = subprocess.run(probe + [url, dc.ca, USER, PASSWORD], capture_output=True,
                               text=True, timeout=120)
            out = p.stdout + p.stderr
            w = [x.replace("exists 3 -> 4", "exists 4 -> 5").replace("exists=3", "exists=4")
                 if label == "starttls" else x for x in want]
            ok &= check(out, w, label) and p.returncode == 0
            if p.returncode != 0:
                print(f"{label}: exit {p.returncode}\n{out}")
        # The password never appears in what the client logs.
        ok &= PASSWORD not in out
        # A server certificate from an unknown CA is refused.
        p = subprocess.run(probe + [f"imaps://127.0.0.1:{dc.imaps_port}", "-", USER,
                            PASSWORD], capture_output=True, text=True, timeout=60)
        ok &= check(p.stdout, ["FAIL error on connection 1: TLS with the IMAP server failed: "
                               "certificate verify failed"], "unknown CA") and p.returncode == 1
        # A name the certificate does not carry is refused too.
        p = subprocess.run(probe + [f"imaps://127.0.0.2:{dc.imaps_port}", dc.ca, USER,
                            PASSWORD], capture_output=True, text=True, timeout=60)
        ok &= check(p.stdout, ["FAIL error on connection 1: TLS with the IMAP server failed: "
                               "certificate verify failed"], "wrong host") and p.returncode == 1
    finally:
        dc.stop()
        if not a.keep:
            shutil.rmtree(d, ignore_errors=True)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
