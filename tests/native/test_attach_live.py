#!/usr/bin/env python3
"""Native mode: attachments streamed to the phone by abqd, against a private Dovecot.

abqd (native mode, Permissive) in front of a private Dovecot on free ports
(bench/native_attach.py's Setup: tests/imap's Dovecot class), alice's INBOX
holding one message with an 8 MiB PDF-ish attachment (base64); first
Dovecot without BINARY (abqd decodes the part: one whole pass, then each
window read by its encoded offset), then with it. As a phone:
GetAttachment answers the attachment's bytes with their Content-Length and
type; ItemOperations Fetch of its FileReference answers WBXML whose Data is
the attachment's base64 (as an inline string), its Content-Length the answer's
length; a phone that goes away after 1 MiB leaves abqd serving (the next
GetAttachment whole); a phone that stops reading mid-answer does not keep the account's one IMAP
connection (`max_connections_per_account = 1`: its FolderSync is answered
meanwhile), and reads the rest whole later; the IMAP server going away while a slow phone reads
cuts the answer short of its Content-Length (the phone retries) and abqd logs
why. abqd's VmRSS stays under 64 MiB throughout (the attachment is never
held; not checked under the sanitizers, whose quarantine keeps freed memory).
"""
import argparse
import base64
import http.client
import os
import re
import shutil
import socket
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))
import native_attach as na  # noqa: E402
from checks import Failure, expect  # noqa: E402

SIZE = 8 * 1024 * 1024 + 5


def request(s, cmd, extra, body):
    """A raw POST on a socket of our own, its head read: (socket, status, headers, first bytes)."""
    ph = s.phone
    sock = socket.create_connection(("127.0.0.1", ph.port), 10)
    head = ("POST /Microsoft-Server-ActiveSync?%s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n"
            "MS-ASProtocolVersion: 14.1\r\nContent-Type: application/vnd.ms-sync.wbxml\r\n"
            "User-Agent: abqd-test/1.0\r\nContent-Length: %d\r\n\r\n"
            % (ph.query(cmd, extra), ph.auth, len(body)))
    sock.sendall(head.encode() + body)
    buf = b""
    while b"\r\n\r\n" not in buf:
        piece = sock.recv(65536)
        if not piece:
            raise Failure("%s: closed before the head" % cmd)
        buf += piece
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    hdrs = dict((k.lower(), v.strip()) for k, v in (ln.split(":", 1) for ln in lines[1:]))
    return sock, int(lines[0].split()[1]), hdrs, rest


NO_BINARY = ("imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ "
             "SORT UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED SPECIAL-USE MOVE\n")


def whole(s, label, peak):
    """GetAttachment and ItemOperations Fetch of the attachment, whole."""
    ph, ref, data = s.phone, s.ref, s.data
    c = http.client.HTTPConnection("127.0.0.1", ph.port, timeout=120)
    c.request("POST", "/Microsoft-Server-ActiveSync?" + ph.query(
        "GetAttachment", "&AttachmentName=" + ref), body=b"",
        headers={"Authorization": ph.auth, "MS-ASProtocolVersion": "14.1"})
    r = c.getresponse()
    got = r.read()
    expect(r.status == 200 and r.getheader("Content-Length") == str(SIZE) and
           r.getheader("Content-Type") == "application/pdf" and got == data,
           "%s: GetAttachment: %d bytes, Content-Length %s, application/pdf, the same bytes" %
           (label, len(got), r.getheader("Content-Length")))
    c.close()
    peak[0] = max(peak[0], na.rss(s.proc.pid))
    expect("streaming %d bytes of part 2" % SIZE in s.log(),
           "%s: ... streamed, not held (abqd's log)" % label)
    body = bytearray()
    st, h, n = ph.post(ph.query("ItemOperations"), na.itemops_body(ref), sink=body.extend)
    b64 = base64.b64encode(data)
    i = bytes(body).find(b64)
    expect(st == 200 and n == len(body) and i > 0 and body[i - 1] == 0x03 and
           body[i + len(b64)] == 0x00 and b"%d" % SIZE in body[:i],
           "%s: ItemOperations Fetch: Data the attachment's base64, an inline string "
           "(%d bytes)" % (label, n))
    peak[0] = max(peak[0], na.rss(s.proc.pid))
    # the whole message as MIME (Type 4, no truncation): streamed, every byte of it
    body = bytearray()
    folder = ref.split(":")[0]
    st, h, n = ph.post(ph.query("ItemOperations"), na.wbxml(
        '<ItemOperations xmlns="ItemOperations:" xmlns:A="AirSyncBase:" xmlns:S="AirSync:">'
        '<Fetch><Store>Mailbox</Store><S:CollectionId>%s</S:CollectionId><S:ServerId>1'
        '</S:ServerId><Options><S:MIMESupport>2</S:MIMESupport><A:BodyPreference><A:Type>4'
        '</A:Type></A:BodyPreference></Options></Fetch></ItemOperations>' % folder),
        sink=body.extend)
    mime = s.mime
    i = bytes(body).find(mime)
    expect(st == 200 and n == len(body) and i > 0 and body[i - 1] == 0x03 and
           body[i + len(mime)] == 0x00 and b"%d" % len(mime) in body[:i],
           "%s: ItemOperations Fetch of the message as MIME: the whole %d bytes, an inline "
           "string (%d bytes)" % (label, len(mime), n))
    expect("streaming %d bytes of part  of 1" % len(mime) in s.log(),
           "%s: ... streamed, not held (abqd's log)" % label)
    peak[0] = max(peak[0], na.rss(s.proc.pid))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--abqd", required=True)
    ap.add_argument("--abqctl", required=True)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--no-rss", action="store_true", help="no bound on abqd's VmRSS (ASan)")
    a = ap.parse_args()
    ok = True
    for label, extra in (("no BINARY", NO_BINARY), ("full", "")):
        d = tempfile.mkdtemp(prefix="abq-attach-")
        s = None
        try:
            s = na.Setup(d, SIZE, a.abqd, a.abqctl, log_level="debug", extra_conf=extra,
                         upstream_conf="max_connections_per_account = 1\n")
            ph, ref = s.phone, s.ref
            peak = [na.rss(s.proc.pid)]
            whole(s, label, peak)
            if extra:
                # decoded by abqd: a whole pass for the first window (the command's run,
                # then the stream's), then each window by its encoded offset (the part's
                # lines are regular); 3 answers streamed so far (Setup's GetAttachment too)
                mapped = re.findall(r"BODY\.PEEK\[2\]<(\d+)\.\d+>", s.log())
                passes = len(re.findall(r"BODY\.PEEK\[2\]\)", s.log()))
                expect(len(mapped) == 3 * (SIZE // (1023 * 1024)) and passes == 6,
                       "%s: windows read by their encoded offset (%d windows, %d whole "
                       "passes)" % (label, len(mapped), passes))
            else:
                slow_phone_holds_no_connection(s, label)
                phone_gone_and_imap_gone(s, label)
            if not a.no_rss:
                expect(peak[0] < 64 * 1024,
                       "%s: abqd's VmRSS stayed under 64 MiB (%d KiB)" % (label, peak[0]))
        except (Failure, AssertionError) as e:
            print("FAIL  %s" % e)
            if s is not None and os.path.exists(s.stderr):
                sys.stdout.write("".join(s.log().splitlines(True)[-20:]))
            ok = False
        finally:
            if s is not None:
                s.stop()
            if not a.keep:
                shutil.rmtree(d, ignore_errors=True)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def slow_phone_holds_no_connection(s, label):
    """A phone that stops reading mid-attachment does not keep the account's one IMAP
    connection (max_connections_per_account = 1): the account's next request is
    answered meanwhile; then the slow phone reads on to the end, byte for byte."""
    ph, ref = s.phone, s.ref
    sock, st, h, rest = request(s, "GetAttachment", "&AttachmentName=" + ref, b"")
    got = bytearray(rest)
    while len(got) < 1024 * 1024:
        piece = sock.recv(65536)
        if not piece:
            break
        got += piece
    time.sleep(1)  # abqd's output to the phone fills up: the stream pauses
    t0 = time.monotonic()
    try:
        st2, h2, n2 = ph.post(ph.query("FolderSync"), na.wbxml(
            '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0</SyncKey></FolderSync>'), timeout=20)
    except socket.timeout:
        st2 = 0
    took = time.monotonic() - t0
    expect(st == 200 and st2 == 200 and took < 10,
           "%s: a FolderSync of the account answered in %.2f s while a phone stalls in a "
           "GetAttachment (HTTP %d)" % (label, took, st2))
    sock.settimeout(60)
    while True:
        piece = sock.recv(1 << 20)
        if not piece:
            break
        got += piece
        if len(got) >= int(h.get("content-length", "0")):
            break
    sock.close()
    expect(bytes(got) == s.data, "%s: ... and the stalled phone then reads the attachment "
           "whole (%d bytes, the same)" % (label, len(got)))


def phone_gone_and_imap_gone(s, label):
    """A phone gone after 1 MiB; then the IMAP server gone while a phone reads."""
    ph, ref = s.phone, s.ref
    sock, st, h, rest = request(s, "GetAttachment", "&AttachmentName=" + ref, b"")
    n = len(rest)
    while n < 1024 * 1024:
        piece = sock.recv(65536)
        if not piece:
            break
        n += len(piece)
    sock.close()
    time.sleep(0.5)
    st2, h2, n2 = ph.post(ph.query("GetAttachment", "&AttachmentName=" + ref), b"")
    expect(st == 200 and s.proc.poll() is None and st2 == 200 and n2 == SIZE,
           "%s: a phone gone after %d bytes: abqd serves the next GetAttachment whole" %
           (label, n))
    sock, st, h, rest = request(s, "GetAttachment", "&AttachmentName=" + ref, b"")
    n = len(rest)
    sock.settimeout(30)
    s.dc.stop()
    time.sleep(0.5)
    try:
        while True:
            piece = sock.recv(65536)
            if not piece:
                break
            n += len(piece)
    except (ConnectionResetError, socket.timeout):
        pass
    sock.close()
    cl = int(h.get("content-length", "0"))
    time.sleep(0.3)
    expect(st == 200 and cl == SIZE and n < cl,
           "%s: IMAP server gone mid-answer: the answer cut at %d of %d bytes" % (label, n, cl))
    expect("the attachment's stream cut at" in s.log(), "%s: ... and abqd logs it" % label)
    expect(s.proc.poll() is None, "%s: abqd still runs" % label)


if __name__ == "__main__":
    sys.exit(main())
