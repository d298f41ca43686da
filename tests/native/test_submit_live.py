#!/usr/bin/env python3
"""Native mode's SMTP submission (src/native/submit.c) against a real server.

Starts the fixture (tests/fixture/upstream.sh up) on free ports in a new /tmp
directory, as check_native.py does, with its own relay (relay.py keeps every
mail in a Maildir with the envelope in X-Fixture-Rcpt-To), or uses a running
one (--fixture DIR). submit-driver (tests/native/submit_driver.c) sends each
message on a libevent loop through Dovecot's submission service, AUTH as the
fixture's user alice; the cases:

  1. alice to bob and carol, Cc a group (bob again, erin), Bcc dave, no Date
     or Message-ID: sent; the relay has the message once, for the four
     envelope recipients (bob once),
     without a Bcc header, with a Date and a Message-ID added;
  2. a 3 MB message with bare LF line ends: arrives whole, with CRLF;
  3. a wrong password: auth refused (535), nothing sent;
  4. a recipient the server refuses (an 8-bit local part, no SMTPUTF8):
     recipient refused, naming it, nothing sent;
  5. the server down (a port nobody listens on): temporary failure;
  6. a message over the cap: refused before connecting (a listener of ours
     on the URL's port sees no connection).

Then the same through a submitq (submit-driver --queue: the submission on
the queue's thread, the outcome back on the driver's loop):

  7. a 3 MB message: arrives once, and the driver's loop ticked (5 ms timer)
     while it was in flight, its longest stall far below the direct path's;
  8. over the cap: the refusal comes back as an outcome;
  9. a server that accepts and never greets: cancelled 300 ms in, no
     callback in the second after, the queue stopped with the transfer in
     flight;
 10. cancelled at once against the real server: no callback.

ABQ_SUBMIT_WRAP (the -valgrind variant) is a command the driver runs under.

  test_submit_live.py --driver build/tests/native/submit-driver [--fixture DIR]
"""

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fixture"))
import check_native  # noqa: E402  (free_ports, fixture, read_env)
import maildir as maildir_lib  # noqa: E402


class Failure(Exception):
    pass


def ok(msg):
    print("ok    %s" % msg, flush=True)


def expect(cond, msg):
    if not cond:
        raise Failure(msg)


def run_driver(driver, work, url, user, password, data, max_size=None, queue=None):
    path = os.path.join(work, "msg-%s.eml" % uuid.uuid4().hex[:8])
    with open(path, "wb") as f:
        f.write(data)
    args = os.environ.get("ABQ_SUBMIT_WRAP", "").split() + [driver]
    if queue is not None:
        args.append(queue)
    args += [url, user, password, "alice@example.test", path]
    if max_size is not None:
        args.append(str(max_size))
    p = subprocess.run(args, capture_output=True, text=True, timeout=180)
    expect(p.returncode == 0, "submit-driver: rc %d: %s" % (p.returncode, p.stderr))
    return p.stdout


def drive(driver, work, url, user, password, data, max_size=None, queue=None):
    line = run_driver(driver, work, url, user, password, data, max_size, queue).splitlines()[0]
    fields = dict(re.findall(r"(\w+)=(\S*)", line.split(" text=")[0].split(" error=")[0]))
    fields["line"] = line
    return fields


def wait_for(maildir, marker, seconds=15):
    return maildir_lib.wait_for(maildir, marker, seconds)


def run_cases(driver, env, work):
    url = "smtp://127.0.0.1:%s" % env["ABQ_FIX_SUBMISSION_PORT"]
    maildir = env["ABQ_FIX_RELAY_MAILDIR"]

    # 1. To, Cc with a group, Bcc; no Date, no Message-ID.
    marker = "submit-live-%s" % uuid.uuid4().hex[:10]
    msg = ("From: Alice Test <alice@example.test>\r\n"
           "To: =?utf-8?q?Bob_M=C3=BCller?= <bob@example.test>, carol@elsewhere.test\r\n"
           "Cc: friends: Bob <bob@example.test>, erin@elsewhere.test;\r\n"
           "Bcc: Dave <dave@elsewhere.test>\r\n"
           "Subject: %s\r\n\r\nHello Bob and Carol.\r\n.a line with a dot\r\n" % marker).encode()
    r = drive(driver, work, url, "alice", "secret", msg)
    expect(r["result"] == "sent" and r["n_rcpt"] == "4", "case 1: %s" % r["line"])
    found = wait_for(maildir, marker)
    expect(len(found) == 1, "case 1: the relay has the message %d times" % len(found))
    head, _, body = found[0].partition(b"\r\n\r\n")
    rcpt = re.search(rb"X-Fixture-Rcpt-To: ([^\r\n]*)", head).group(1)
    expect(rcpt == b"bob@example.test, carol@elsewhere.test, erin@elsewhere.test, dave@elsewhere.test",
           "case 1: envelope recipients %r" % rcpt)
    expect(re.search(rb"(?im)^bcc:", head) is None, "case 1: a Bcc header reached the relay")
    expect(b"Dave" not in head, "case 1: the Bcc's name reached the relay")
    expect(re.search(rb"(?m)^Date: ", head) and re.search(rb"(?m)^Message-ID: <[0-9a-f]+@example.test>", head),
           "case 1: no Date or Message-ID added:\n%r" % head)
    expect(re.search(rb"Return-Path: <alice@example.test>", head), "case 1: envelope sender")
    expect(body == b"Hello Bob and Carol.\r\n.a line with a dot\r\n", "case 1: body %r" % body)
    ok("sent to bob and carol, Cc a group with erin, Bcc dave: once in the relay for %s, no Bcc header, Date and "
       "Message-ID added (%s ms, loop's longest stall %s ms)" % (rcpt.decode(), r["ms"], r["stall_ms"]))

    # 2. 3 MB with bare LFs.
    marker = "submit-big-%s" % uuid.uuid4().hex[:10]
    lines = [("%06d %s" % (i, "x" * 70)) for i in range(40000)]
    msg = ("From: alice@example.test\nTo: bob@example.test\nSubject: %s\n\n" % marker +
           "\n".join(lines) + "\n").encode()
    r = drive(driver, work, url, "alice", "secret", msg)
    expect(r["result"] == "sent", "case 2: %s" % r["line"])
    found = wait_for(maildir, marker)
    expect(len(found) == 1, "case 2: %d copies" % len(found))
    body = found[0].partition(b"\r\n\r\n")[2]
    expect(body == ("\r\n".join(lines) + "\r\n").encode(), "case 2: the body changed on the way")
    r2_stall = r["stall_ms"]
    ok("%d bytes with bare LFs arrived whole with CRLF (%s ms, loop's longest stall %s ms)" % (
        len(msg), r["ms"], r["stall_ms"]))

    # 3. Wrong password.
    marker = "submit-authfail-%s" % uuid.uuid4().hex[:10]
    r = drive(driver, work, url, "alice", "wrong",
              ("From: alice@example.test\r\nTo: bob@example.test\r\nSubject: %s\r\n\r\nx\r\n" % marker).encode())
    expect(r["result"] == "auth" and r["code"] == "535", "case 3: %s" % r["line"])
    expect("wrong" not in r["line"], "case 3: the password shows in the outcome")
    ok("wrong password: auth refused, 535 (%s ms, Dovecot's auth penalty)" % r["ms"])

    # 4. A recipient the server refuses.
    marker = "submit-rcptfail-%s" % uuid.uuid4().hex[:10]
    msg = ("From: alice@example.test\r\nTo: bob@example.test, j\u00f6rg@elsewhere.test\r\n"
           "Subject: %s\r\n\r\nx\r\n" % marker).encode()
    r = drive(driver, work, url, "alice", "secret", msg)
    expect(r["result"] == "recipient" and r["code"].startswith("5") and
           r["rcpt"] == "j\u00f6rg@elsewhere.test", "case 4: %s" % r["line"])
    expect(not wait_for(maildir, marker, 2), "case 4: the message was sent anyway")
    ok("refused recipient: %s" % r["line"].split(" n_rcpt")[0])

    # 5. Server down.
    down = check_native.free_ports(1)[0]
    r = drive(driver, work, "smtp://127.0.0.1:%d" % down, "alice", "secret",
              b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: x\r\n\r\nx\r\n")
    expect(r["result"] == "temporary", "case 5: %s" % r["line"])
    ok("server down: temporary failure (%s ms)" % r["ms"])

    # 6. Over the cap: no connection at all.
    port = check_native.free_ports(1)[0]
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", port))
    lsock.listen(4)
    lsock.settimeout(0.5)
    r = drive(driver, work, "smtp://127.0.0.1:%d" % port, "alice", "secret",
              b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: big\r\n\r\n" + b"y" * 5000,
              max_size=4096)
    try:
        conn, _ = lsock.accept()
        conn.close()
        raise Failure("case 6: the driver connected although the message is over the cap")
    except socket.timeout:
        pass
    finally:
        lsock.close()
    expect(r.get("refused") == "message", "case 6: %s" % r["line"])
    ok("over the cap: refused before connecting (%s)" % r["line"])

    # 7. Through the queue: 3 MB, the caller's loop keeps ticking.
    marker = "submitq-big-%s" % uuid.uuid4().hex[:10]
    msg = ("From: alice@example.test\nTo: bob@example.test\nSubject: %s\n\n" % marker +
           "\n".join(lines) + "\n").encode()
    direct_stall = float(r2_stall)
    r = drive(driver, work, url, "alice", "secret", msg, queue="--queue")
    expect(r["result"] == "sent", "case 7: %s" % r["line"])
    found = wait_for(maildir, marker)
    expect(len(found) == 1, "case 7: %d copies" % len(found))
    expect(found[0].partition(b"\r\n\r\n")[2] == ("\r\n".join(lines) + "\r\n").encode(),
           "case 7: the body changed on the way")
    expect(int(r["ticks"]) >= 2, "case 7: the caller's loop did not tick while sending: %s" % r["line"])
    if not os.environ.get("ABQ_SUBMIT_WRAP"):
        expect(float(r["stall_ms"]) < max(direct_stall / 2, 25),
               "case 7: the caller's loop stalled %s ms (direct: %s)" % (r["stall_ms"], direct_stall))
    ok("through the queue: 3 MB arrived once; the caller's loop ticked %s times while it was in flight, "
       "longest stall %s ms (direct: %.1f ms), %s ms in all" % (r["ticks"], r["stall_ms"], direct_stall, r["ms"]))

    # 8. Through the queue, over the cap: an outcome, no connection.
    r = drive(driver, work, url, "alice", "secret",
              b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: big\r\n\r\n" + b"y" * 5000,
              max_size=4096, queue="--queue")
    expect(r["result"] == "message" and r["code"] == "0", "case 8: %s" % r["line"])
    ok("through the queue, over the cap: refused, as an outcome (%s)" % r["line"].split(" ticks")[0])

    # 9. Cancelled in flight: a server that never greets.
    port = check_native.free_ports(1)[0]
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", port))
    lsock.listen(4)
    try:
        out = run_driver(driver, work, "smtp://127.0.0.1:%d" % port, "alice", "secret",
                         b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: x\r\n\r\nx\r\n",
                         queue="--queue=300")
        lsock.settimeout(0.1)
        try:
            conn, _ = lsock.accept()
            conn.close()
        except socket.timeout:
            raise Failure("case 9: the queue never connected")
    finally:
        lsock.close()
    expect("cancelled after 300 ms" in out and "cancelled callbacks=0 " in out,
           "case 9: %r" % out)
    ok("cancelled in flight (connected, no greeting yet): no callback, the queue stopped cleanly")

    # 10. Cancelled at once against the real server.
    marker = "submitq-cancel-%s" % uuid.uuid4().hex[:10]
    out = run_driver(driver, work, url, "alice", "secret",
                     ("From: alice@example.test\r\nTo: bob@example.test\r\nSubject: %s\r\n\r\nx\r\n"
                      % marker).encode(), queue="--queue=0")
    expect("cancelled callbacks=0 pending=0" in out, "case 10: %r" % out)
    ok("cancelled at once: no callback (the relay has it %d times)" % len(wait_for(maildir, marker, 1)))

    # 11. The queue's caps: one user cannot fill it, nor can all together.
    port = check_native.free_ports(1)[0]
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", port))
    lsock.listen(16)
    marker = "submitq-cap-%s" % uuid.uuid4().hex[:10]
    try:
        out = run_driver(driver, work, url, "alice", "secret",
                         ("From: alice@example.test\r\nTo: bob@example.test\r\nSubject: %s\r\n\r\nx\r\n"
                          % marker).encode(), queue="--flood=%d" % port)
    finally:
        lsock.close()
    got = dict(re.findall(r"^flood job=(\d+) result=(\w+)", out, re.M))
    expect(got == {"3": "temporary", "5": "temporary", "6": "temporary"},
           "case 11: the jobs answered at once: %r\n%s" % (got, out))
    expect(re.search(r"^flood held=3 ", out, re.M), "case 11: %r" % out)
    got2 = re.findall(r"^flood2 job=(\d+) result=(\w+)", out, re.M)
    expect(got2 == [("2", "temporary"), ("1", "sent"), ("3", "sent")], "case 11: %r" % got2)
    expect(len(wait_for(maildir, marker)) == 2, "case 11: not 2 copies at the relay")
    ok("caps: a 3rd job for one user (cap 2), a 4th in all (cap 3) and one over the byte cap "
       "answered 'temporary' at once, 3 held; a freed slot is taken again (2 copies sent)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--driver", required=True)
    ap.add_argument("--fixture", help="a running fixture's DIR (else one is started)")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="abqd-submit-", dir="/tmp")
    os.chmod(work, 0o755)
    try:
        if a.fixture:
            run_cases(a.driver, check_native.read_env(a.fixture), work)
        else:
            fixdir = os.path.join(work, "fixture")
            pg, imap, mc, sogo, smtp, sub, relay = check_native.free_ports(7)
            env = {k: v for k, v in os.environ.items() if not k.startswith("ABQ_FIX_")}
            env.update({"ABQ_FIX_PG_PORT": str(pg), "ABQ_FIX_IMAP_PORT": str(imap),
                        "ABQ_FIX_MEMCACHED_PORT": str(mc), "ABQ_FIX_SOGO_PORT": str(sogo),
                        "ABQ_FIX_SMTP_PORT": str(smtp), "ABQ_FIX_SUBMISSION_PORT": str(sub),
                        "ABQ_FIX_RELAY_PORT": str(relay)})
            t0 = time.monotonic()
            check_native.fixture(["up"], env, fixdir, os.path.join(work, "up.out"))
            ok("fixture up in %.1f s (%s)" % (time.monotonic() - t0, fixdir))
            try:
                run_cases(a.driver, check_native.read_env(fixdir), work)
            finally:
                check_native.fixture(["down"], env, fixdir, os.path.join(work, "down.out"))
    except (Failure, check_native.Failure) as e:
        print("FAIL  %s\n      work dir kept: %s" % (e, work), file=sys.stderr)
        return 1
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
