#!/usr/bin/env python3
"""The IMAP mailbox backend (src/native/mailbox_imap.c) and its pool against a real Dovecot.

Starts a private Dovecot as tests/imap/test_imap_live.py does (its Dovecot
class, reused), seeds INBOX with 2,000 messages (Maildir files written
before the first login, their arrival times a minute apart), and drives
tests/native/imapmbx-driver, which plays a phone through mbx_run and the
real command layer and prints each answer as XML. Cases: FolderSync with
SPECIAL-USE types and a non-ASCII folder; the initial Sync in windows of 100
(each message once, newest first; IMAP commands per request printed); a
no-change Sync; new mail appended by another connection; a flag set by
another connection; an expunge; the phone's read flag and delete (to Trash)
not echoed; a folder recreated (UIDVALIDITY) -> Status 3; folders renamed
and moved by another IMAP client keep their ids (an Update; the renamed
folder's Sync goes on from its key), a swap stays delete+add; a wrong password ->
auth refused; 5 concurrent requests with a cap of 2 never open a third
connection. Search (subject words, a sender, a body word in every folder,
one folder, a date range newest first, non-ASCII words, a backslash and
quotes, CR/LF, no match). Attachments (fetch_part): a PDF-ish binary attachment fetched by
ItemOperations Fetch whole and by Range, and by GetAttachment, equals the
original bytes (its Total the decoded size even where the server's
BINARY.SIZE is off); a quoted-printable one decoded; an unknown section
Status 15 / HTTP 500; a 3 MiB attachment of a message past the 1 MiB item
fetch whole. Messages over that 1 MiB (read from their outline): a text part
after a 3 MiB attachment is the body, both attachments listed with their
sizes, the one after the first MiB fetched whole, Type 4 cut with Truncated
and the message's size (AllOrNone: no data), an HTML body over the 512 KiB
text cap cut with Truncated and its size, its plain alternative whole, a
single 2.4 MB text part cut likewise (--only-large runs just these). Then the same against Dovecot offering no CONDSTORE, QRESYNC,
ESEARCH or BINARY (imap_capability): the same answers (the parts decoded by
abqd). Last, a scripted server offering OBJECTID (RFC 8474; Dovecot 2.3 has
none): two folders with one UIDVALIDITY renamed at once keep their ids by
their MAILBOXIDs.

Sending (the first Dovecot only: its submission service relaying to the
fixture's relay.py, which keeps every mail in a Maildir): a SendMail with
SaveInSentItems and a Bcc arrives at the relay once (the request's reruns
do not send again), without the Bcc header, and its copy is in Sent, read,
with the Bcc; without SaveInSentItems it arrives and Sent is unchanged; a
recipient the server refuses gives Status 116, nothing at the relay and
nothing in Sent; a SmartReply to an Inbox message arrives once, quoting it,
with In-Reply-To, and marks it \\Answered; a SmartForward of a 2.3 MB message
carries both its attachments whole (the one past the first MiB too).
"""
import argparse
import html as html_lib
import imaplib
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "imap"))
sys.path.insert(0, os.path.join(HERE, "..", "fixture"))
import test_imap_live as live  # noqa: E402  (Dovecot, USER, PASSWORD)
import maildir as maildir_lib  # noqa: E402
from checks import Failure, expect  # noqa: E402

N = 2000
REDUCED = ("imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ "
           "SORT UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED SPECIAL-USE MOVE\n")


def seed(dc):
    """2,000 messages written straight into INBOX's Maildir (cur/), one a minute apart."""
    home = os.path.join(dc.d, "mail", live.USER, "Maildir")
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(home, sub), exist_ok=True)
    t0 = 1790000000
    for i in range(1, N + 1):
        p = os.path.join(home, "cur", "%d.M%06d.seed:2,%s" % (t0 + i, i, "S" if i % 3 == 0 else ""))
        with open(p, "w") as f:
            f.write("From: Bob <bob@example.com>\nTo: alice@example.com\n"
                    "Subject: Message %d\nMessage-ID: <m%d@example.com>\n\nBody %d.\n" % (i, i, i))
        os.utime(p, (t0 + i * 60, t0 + i * 60))
    if os.geteuid() == 0:
        for root, dirs, files in os.walk(os.path.join(dc.d, "mail")):
            for n in dirs + files:
                shutil.chown(os.path.join(root, n), "mail", "mail")
        shutil.chown(os.path.join(dc.d, "mail"), "mail", "mail")


def doveadm(dc, *args, input=None):
    return subprocess.run(["doveadm", "-c", dc.conf] + list(args), input=input, check=True,
                          capture_output=True, text=True).stdout


class Driver:
    def __init__(self, exe, url, ca, store, cap, password=live.PASSWORD, env=None):
        # ABQ_IMAPMBX_WRAP: a command the driver runs under (valgrind in the -valgrind test).
        wrap = os.environ.get("ABQ_IMAPMBX_WRAP", "").split()
        self.p = subprocess.Popen(wrap + [exe, url, ca, live.USER, password, store, str(cap)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  env=env)

    def cmd(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        out = []
        while True:
            ln = self.p.stdout.readline()
            if ln == "" or ln.strip() == "END":
                break
            out.append(ln.rstrip("\n"))
        return "\n".join(out)

    def close(self):
        self.p.stdin.close()
        rc = self.p.wait(60)
        if rc != 0:
            raise Failure("driver exit %d" % rc)


def tags(xml, name):
    return re.findall(r"<%s(?: [^>]*)?>([^<]*)</%s>" % (name, name), xml)


def sync_parts(out):
    """(status, key, more, adds [(sid, subject, read, flag)], changes, deletes, cmds)."""
    xml = out.split("\n")[0]
    adds = []
    for a in re.findall(r"<Add>(.*?)</Add>", xml):
        adds.append((tags(a, "ServerId")[0], (tags(a, "Subject") or [""])[0],
                     (tags(a, "Read") or [""])[0], "FlagStatus" in a))
    changes = []
    for c in re.findall(r"<Change>(.*?)</Change>", xml):
        changes.append((tags(c, "ServerId")[0], (tags(c, "Read") or [""])[0],
                        (tags(c, "FlagStatus") or [""])[0]))
    dels = [tags(d, "ServerId")[0] for d in re.findall(r"<(?:Delete|SoftDelete)>(.*?)</(?:Delete|SoftDelete)>", xml)]
    status = (tags(xml, "Status") or [""])[0]
    key = (tags(xml, "SyncKey") or [""])[0]
    cmds = re.search(r"runs=\d+ cmds=\d+", out).group(0)
    return status, key, "<MoreAvailable" in xml, adds, changes, dels, cmds


def mailboxes(dc, subscribed=False):
    """The account's mailboxes (UTF-8), or the subscribed ones."""
    out = doveadm(dc, "mailbox", "list", "-u", live.USER, *(["-s"] if subscribed else []))
    return set(out.splitlines())


def fresh_key(d):
    """FolderSync 0: (key, {name: (id, parent)})."""
    xml = d.cmd("foldersync 0").split("\n")[0]
    fl = {tags(a, "DisplayName")[0]: (tags(a, "ServerId")[0], tags(a, "ParentId")[0])
          for a in re.findall(r"<Add>(.*?)</Add>", xml)}
    return tags(xml, "SyncKey")[0], fl


def folder_cases(d, dc, label):
    """The phone creates, renames (moves) and deletes folders (FolderCreate/Update/Delete)."""
    key, fl = fresh_key(d)
    inbox = fl["Inbox"][0]
    # create, with a non-ASCII name (modified UTF-7 on the wire)
    out = d.cmd("fcreate %s 0 Projekte-\u00c4" % key)
    xml = out.split("\n")[0]
    expect(tags(xml, "Status") == ["1"] and tags(xml, "ServerId") and tags(xml, "SyncKey") != [key],
           "%s: FolderCreate: Status 1, ServerId, a new key (%s)" % (label, xml))
    pid, key = tags(xml, "ServerId")[0], tags(xml, "SyncKey")[0]
    expect("Projekte-\u00c4" in mailboxes(dc) and "Projekte-\u00c4" in mailboxes(dc, True),
           "%s: created and subscribed on the server" % label)
    xml = d.cmd("foldersync %s" % key).split("\n")[0]
    expect(tags(xml, "Count") == ["0"], "%s: the phone's own create not echoed (%s)" % (label, xml))
    xml = d.cmd("fcreate %s %s Sub" % (key, pid)).split("\n")[0]
    expect(tags(xml, "Status") == ["1"], "%s: FolderCreate below it" % label)
    sid, key = tags(xml, "ServerId")[0], tags(xml, "SyncKey")[0]
    expect("Projekte-\u00c4/Sub" in mailboxes(dc), "%s: Projekte-\u00c4/Sub on the server" % label)
    xml = d.cmd("fcreate %s 0 junk" % key).split("\n")[0]
    expect(tags(xml, "Status") == ["2"], "%s: FolderCreate of a name there: 2" % label)
    xml = d.cmd("fcreate %s nowhere X" % key).split("\n")[0]
    expect(tags(xml, "Status") == ["5"], "%s: FolderCreate under no parent: 5" % label)
    xml = d.cmd("fcreate %s 0 a/b" % key).split("\n")[0]
    expect(tags(xml, "Status") == ["10"], "%s: FolderCreate with the delimiter: 10" % label)
    xml = d.cmd("fcreate stale-key 0 Y").split("\n")[0]
    expect(tags(xml, "Status") == ["9"], "%s: FolderCreate with another key: 9" % label)
    # a message in it, synced
    doveadm(dc, "save", "-u", live.USER, "-m", "Projekte-\u00c4", input="Subject: p1\n\np\n")
    st, pkey, more, adds, ch, dels, cmds = sync_parts(d.cmd("sync %s 0 100" % pid))
    st, pkey, more, adds, ch, dels, cmds = sync_parts(d.cmd("sync %s %s 100" % (pid, pkey)))
    expect(len(adds) == 1, "%s: the new folder synced" % label)
    # rename: the id, its message, its cursor and its child kept
    xml = d.cmd("fupdate %s %s 0 Archiv-2026" % (key, pid)).split("\n")[0]
    expect(tags(xml, "Status") == ["1"], "%s: FolderUpdate: Status 1 (%s)" % (label, xml))
    key = tags(xml, "SyncKey")[0]
    mb = mailboxes(dc)
    expect("Archiv-2026" in mb and "Archiv-2026/Sub" in mb and "Projekte-\u00c4" not in mb,
           "%s: renamed on the server, its child with it" % label)
    xml = d.cmd("foldersync %s" % key).split("\n")[0]
    expect(tags(xml, "Count") == ["0"], "%s: the phone's own rename not echoed (%s)" % (label, xml))
    st, pkey, more, adds, ch, dels, cmds = sync_parts(d.cmd("sync %s %s 100" % (pid, pkey)))
    expect(st == "1" and not adds and not dels, "%s: the renamed folder's cursor still holds" % label)
    doveadm(dc, "save", "-u", live.USER, "-m", "Archiv-2026", input="Subject: p2\n\np\n")
    st, pkey, more, adds, ch, dels, cmds = sync_parts(d.cmd("sync %s %s 100" % (pid, pkey)))
    expect([a[1] for a in adds] == ["p2"], "%s: new mail in the renamed folder, same id" % label)
    for bad, want, what in (("%s 0 Renamed" % inbox, "2", "the Inbox"),
                            ("nowhere 0 Renamed", "4", "no such folder"),
                            ("%s %s Loop" % (pid, sid), "5", "below itself")):
        xml = d.cmd("fupdate %s %s" % (key, bad)).split("\n")[0]
        expect(tags(xml, "Status") == [want], "%s: FolderUpdate of %s: %s" % (label, what, want))
    k2, fl = fresh_key(d)
    expect(fl.get("Archiv-2026") == (pid, "0") and fl.get("Sub") == (sid, pid),
           "%s: a new FolderSync: the ids kept across the rename (%s)" % (label, fl))
    key = k2
    # delete: the folder and its child
    xml = d.cmd("fdelete %s %s" % (key, inbox)).split("\n")[0]
    expect(tags(xml, "Status") == ["3"], "%s: FolderDelete of the Inbox: 3" % label)
    xml = d.cmd("fdelete %s %s" % (key, pid)).split("\n")[0]
    expect(tags(xml, "Status") == ["1"], "%s: FolderDelete: Status 1 (%s)" % (label, xml))
    key = tags(xml, "SyncKey")[0]
    mb = mailboxes(dc)
    expect(not any(m.startswith("Archiv-2026") for m in mb), "%s: deleted on the server" % label)
    xml = d.cmd("foldersync %s" % key).split("\n")[0]
    expect(tags(xml, "Count") == ["0"], "%s: the phone's own delete not echoed (%s)" % (label, xml))
    xml = d.cmd("fdelete %s %s" % (key, pid)).split("\n")[0]
    expect(tags(xml, "Status") == ["4"], "%s: FolderDelete again: 4" % label)
    return "done"


def other_client(dc):
    """A second IMAP connection, as Thunderbird or a webmail would be (imaplib over imaps://)."""
    m = imaplib.IMAP4_SSL("127.0.0.1", dc.imaps_port,
                          ssl_context=ssl.create_default_context(cafile=dc.ca))
    m.login(live.USER, live.PASSWORD)
    return m


def folder_changes(xml):
    """A FolderSync's changes: ({id: (name, parent)} updated, [deleted ids], {name: id} added)."""
    ups = {tags(u, "ServerId")[0]: (tags(u, "DisplayName")[0], tags(u, "ParentId")[0])
           for u in re.findall(r"<Update>(.*?)</Update>", xml)}
    dels = [tags(x, "ServerId")[0] for x in re.findall(r"<Delete>(.*?)</Delete>", xml)]
    adds = {tags(a, "DisplayName")[0]: tags(a, "ServerId")[0]
            for a in re.findall(r"<Add>(.*?)</Add>", xml)}
    return ups, dels, adds


def server_rename_cases(d, dc, label):
    """Folders renamed on the server by another client: the id kept (UIDVALIDITY; Dovecot
    2.3 has no OBJECTID), the phone's Sync goes on; a swap stays delete+add."""
    m = other_client(dc)
    for mb in ("Team", "Team/Q", "S1", "S2"):
        expect(m.create(mb)[0] == "OK", "%s: CREATE %s" % (label, mb))
    for mb in ("Team", "S1", "S2"):
        m.append(mb, None, None, ("Subject: in %s\r\n\r\nx\r\n" % mb).encode())
    key, fl = fresh_key(d)
    team, q, s1, s2 = fl["Team"][0], fl["Q"][0], fl["S1"][0], fl["S2"][0]
    expect(fl["Q"][1] == team, "%s: Q under Team" % label)
    keys = {}
    for fid in (team, s1):
        st, k, more, adds, ch, dels, cmds = sync_parts(d.cmd("sync %s 0 100" % fid))
        st, k, more, adds, ch, dels, cmds = sync_parts(d.cmd("sync %s %s 100" % (fid, k)))
        expect(st == "1" and len(adds) == 1, "%s: folder %s synced" % (label, fid))
        keys[fid] = k
    # Renamed by the other client, with its child: an Update, same ids, no Delete/Add
    out = d.cmd("foldersync %s" % key)
    nochange = re.search(r"runs=\d+ cmds=\d+", out).group(0)
    expect(nochange.endswith(" cmds=1"),
           "%s: a no-change FolderSync costs one IMAP command, LIST (%s)" % (label, nochange))
    expect(m.rename("Team", "Crew")[0] == "OK", "%s: RENAME Team Crew" % label)
    out = d.cmd("foldersync %s" % key)
    xml = out.split("\n")[0]
    print("      FolderSync after a rename on the server: %s (no change: %s)"
          % (re.search(r"runs=\d+ cmds=\d+", out).group(0), nochange))
    ups, dels, adds = folder_changes(xml)
    expect(ups == {team: ("Crew", "0")} and not dels and not adds,
           "%s: a rename on the server is an Update of the same id (%s)" % (label, xml))
    key = tags(xml, "SyncKey")[0]
    st, k, more, adds, ch, dels, cmds = sync_parts(d.cmd("sync %s %s 100" % (team, keys[team])))
    expect(st == "1" and not adds and not dels,
           "%s: the renamed folder's Sync goes on from its key (status %s)" % (label, st))
    m.append("Crew", None, None, b"Subject: after rename\r\n\r\nx\r\n")
    st, k, more, adds, ch, dels, cmds = sync_parts(d.cmd("sync %s %s 100" % (team, k)))
    expect(st == "1" and [a[1] for a in adds] == ["after rename"],
           "%s: new mail in the renamed folder (%s)" % (label, adds))
    # Moved under another parent: the ParentId changes, the id stays
    expect(m.rename("Crew/Q", "S2/Q")[0] == "OK", "%s: RENAME Crew/Q S2/Q" % label)
    xml = d.cmd("foldersync %s" % key).split("\n")[0]
    ups, dels, adds = folder_changes(xml)
    expect(ups == {q: ("Q", s2)} and not dels and not adds,
           "%s: a move on the server is an Update of the same id (%s)" % (label, xml))
    key = tags(xml, "SyncKey")[0]
    # A swap (S1 -> S3, S2 -> S1): no match is sure: S3 is new, S2's id deleted, and S1's
    # id now names another mailbox, whose Sync starts over (Status 3)
    expect(m.rename("S1", "S3")[0] == "OK" and m.rename("S2", "S1")[0] == "OK",
           "%s: RENAME S1 S3, S2 S1" % label)
    xml = d.cmd("foldersync %s" % key).split("\n")[0]
    ups, dels, adds = folder_changes(xml)
    expect(list(adds) == ["S3"] and adds["S3"] not in (team, q, s1, s2) and dels == [s2],
           "%s: a swap stays delete+add (%s)" % (label, xml))
    st, k, more, ad, ch, de, cmds = sync_parts(d.cmd("sync %s %s 100" % (s1, keys[s1])))
    expect(st == "3", "%s: the swapped name's Sync starts over (status %s)" % (label, st))
    for mb in ("S3", "S1/Q", "S1", "Crew"):
        m.delete(mb)
    m.logout()
    return "done"


class ObjectIdServer:
    """A scripted IMAP server offering OBJECTID (RFC 8474), which Dovecot 2.3 lacks, and
    LIST-STATUS: LOGIN or AUTHENTICATE PLAIN, LIST of self.folders {name: (uidvalidity,
    mailboxid)} (with RETURN (STATUS ...) each one's STATUS too), STATUS with MAILBOXID;
    every other command OK. self.seen: the commands it got."""

    def __init__(self):
        self.folders = {}
        self.seen = []
        self.lis = socket.socket()
        self.lis.bind(("127.0.0.1", 0))
        self.lis.listen(8)
        self.port = self.lis.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.lis.accept()
            except OSError:
                return
            threading.Thread(target=self.conn, args=(c,), daemon=True).start()

    def conn(self, c):
        f = c.makefile("rwb", buffering=0)
        f.write(b"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN LITERAL+ ID ENABLE "
                b"UIDPLUS LIST-EXTENDED LIST-STATUS OBJECTID] scripted\r\n")
        for raw in f:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            tag, _, rest = line.partition(" ")
            cmd = rest.split(" ")[0].upper()
            self.seen.append(rest)
            out = []
            if cmd == "LIST":
                for name in sorted(self.folders):
                    out.append('* LIST () "/" "%s"' % name)
                    if "RETURN (STATUS" in rest.upper():
                        out.append('* STATUS "%s" (UIDVALIDITY %d MAILBOXID (%s))'
                                   % ((name,) + self.folders[name]))
            elif cmd == "STATUS":
                name = re.match(r'STATUS "?([^"]*?)"? \(', rest, re.I).group(1)
                if name not in self.folders:
                    f.write(("%s NO Mailbox doesn't exist\r\n" % tag).encode())
                    continue
                uv, mid = self.folders[name]
                out.append('* STATUS "%s" (UIDVALIDITY %d MAILBOXID (%s))' % (name, uv, mid))
            elif cmd == "LOGOUT":
                out.append("* BYE Logging out")
            elif cmd == "ID":
                out.append("* ID NIL")
            out.append("%s OK %s completed" % (tag, cmd))
            f.write(("\r\n".join(out) + "\r\n").encode())
            if cmd == "LOGOUT":
                break
        c.close()

    def close(self):
        self.lis.close()


def objectid_cases(exe, work):
    """MAILBOXID (RFC 8474) decides a rename on the server where UIDVALIDITY cannot: two
    folders with one UIDVALIDITY renamed at once keep their ids, each by its MAILBOXID.
    An account's first listing of many folders asks one LIST-STATUS, not a STATUS each."""
    srv = ObjectIdServer()
    srv.folders = {"F%d" % i: (100 + i, "M-F%d" % i) for i in range(8)}
    d = Driver(exe, "imap://127.0.0.1:%d" % srv.port, live.make_certs(work)[0],
               "sqlite:" + os.path.join(work, "many.sqlite"), 2)
    try:
        key, fl = fresh_key(d)
        status = [c for c in srv.seen if "STATUS" in c.upper()]
        expect(len(fl) == 8 and status == ['LIST "" "*" RETURN (STATUS (UIDVALIDITY MAILBOXID))'],
               "objectid: 8 new folders, one LIST-STATUS (%s)" % status)
        srv.folders["G0"] = srv.folders.pop("F0")
        xml = d.cmd("foldersync %s" % key).split("\n")[0]
        ups, dels, adds = folder_changes(xml)
        expect(ups == {fl["F0"][0]: ("G0", "0")} and not dels and not adds,
               "objectid: the MAILBOXIDs LIST-STATUS gave are in the map (%s)" % xml)
    finally:
        d.close()
    srv.seen.clear()
    srv.folders = {"INBOX": (1, "M-IN"), "Alpha": (7, "M-A"), "Beta": (7, "M-B")}
    ca = live.make_certs(work)[0]  # the driver's pool loads a CA file (plain imap:// here)
    d = Driver(exe, "imap://127.0.0.1:%d" % srv.port, ca,
               "sqlite:" + os.path.join(work, "objectid.sqlite"), 2)
    try:
        key, fl = fresh_key(d)
        alpha, beta = fl["Alpha"][0], fl["Beta"][0]
        status = [c for c in srv.seen if c.upper().startswith("STATUS")]
        expect(len(status) == 3 and all("MAILBOXID" in c.upper() for c in status),
               "objectid: STATUS asks MAILBOXID where OBJECTID is offered (%s)" % status)
        srv.folders = {"INBOX": (1, "M-IN"), "Delta": (7, "M-B"), "Gamma": (7, "M-A")}
        xml = d.cmd("foldersync %s" % key).split("\n")[0]
        ups, dels, adds = folder_changes(xml)
        expect(ups == {alpha: ("Gamma", "0"), beta: ("Delta", "0")} and not dels and not adds,
               "objectid: renames told by MAILBOXID keep the ids, UIDVALIDITY alike (%s)" % xml)
        key = tags(xml, "SyncKey")[0]
        srv.seen.clear()
        xml = d.cmd("foldersync %s" % key).split("\n")[0]
        expect(tags(xml, "Count") == ["0"] and not [c for c in srv.seen if "STATUS" in c.upper()],
               "objectid: a FolderSync with nothing new asks no STATUS (%s)" % srv.seen)
    finally:
        d.close()
        srv.close()


def scenario(exe, dc, url, work, label):
    """Every case; returns a comparable summary of the phone-visible answers."""
    summary = []
    store = "sqlite:" + os.path.join(work, "store-%s.sqlite" % label)
    d = Driver(exe, url, dc.ca, store, 2)
    # FolderSync
    out = d.cmd("foldersync 0")
    xml = out.split("\n")[0]
    folders = {}
    for a in re.findall(r"<Add>(.*?)</Add>", xml):
        folders[tags(a, "DisplayName")[0]] = (tags(a, "ServerId")[0], tags(a, "Type")[0])
    expect(folders.get("Inbox", ("", ""))[1] == "2", "%s: FolderSync: Inbox type 2" % label)
    for name, t in (("Sent", "5"), ("Drafts", "3"), ("Trash", "4"), ("Junk", "12"),
                    ("Éléments envoyés", "12")):
        expect(folders.get(name, ("", ""))[1] == t, "%s: FolderSync: %s type %s" % (label, name, t))
    summary.append(sorted((k, v[1]) for k, v in folders.items()))
    inbox = folders["Inbox"][0]
    # Initial Sync in windows of 100
    st, key, more, adds, ch, dels, cmds = sync_parts(d.cmd("sync %s 0 100" % inbox))
    expect(st == "1" and not adds, "%s: Sync 0: Status 1, no items" % label)
    seen, windows, per_req = [], 0, []
    while True:
        st, key, more, adds, ch, dels, cmds = sync_parts(d.cmd("sync %s %s 100" % (inbox, key)))
        if st != "1":
            raise Failure("%s: Sync status %s" % (label, st))
        windows += 1
        per_req.append(cmds)
        seen += [a[0] for a in adds]
        if not more:
            break
    uids = [int(s) for s in seen]
    expect(len(uids) == N and len(set(uids)) == N, "%s: initial Sync: %d messages, each once" % (label, N))
    expect(uids == sorted(uids, reverse=True), "%s: newest first" % label)
    expect(windows == N // 100, "%s: %d windows of 100" % (label, windows))
    print("      runs and IMAP commands per Sync request: %s" % sorted(set(per_req)))
    summary.append(("initial", len(uids), windows))
    # No change
    st, key, more, adds, ch, dels, cmds = sync_parts(d.cmd("sync %s %s 100" % (inbox, key)))
    expect(st == "1" and not adds and not ch and not dels, "%s: no-change Sync: nothing" % label)
    # With CONDSTORE the SELECT alone shows nothing moved (HIGHESTMODSEQ, UIDNEXT, EXISTS
    # as the cursor left them): no search. Without it, the searches run.
    n_nochange = int(re.search(r"cmds=(\d+)", cmds).group(1))
    print("      no-change Sync: %s" % cmds)
    if label == "full":
        expect(n_nochange <= 2, "%s: no-change Sync without a search (%s)" % (label, cmds))
    else:
        expect(n_nochange >= 4, "%s: no-change Sync searches (%s)" % (label, cmds))
    # New mail by another connection
    doveadm(dc, "save", "-u", live.USER, "-m", "INBOX",
            input="From: Carol <carol@example.com>\nTo: alice@example.com\nSubject: New one\n\nHi.\n")
    st, key, more, adds, ch, dels, cmds = sync_parts(d.cmd("sync %s %s 100" % (inbox, key)))
    expect(len(adds) == 1 and adds[0][0] == str(N + 1) and adds[0][1] == "New one",
           "%s: appended mail added (%s)" % (label, adds))
    # A flag set by another connection
    doveadm(dc, "flags", "add", "-u", live.USER, "\\Flagged", "mailbox", "INBOX", "uid", "10")
    st, key, more, adds, ch, dels, cmds = sync_parts(d.cmd("sync %s %s 100" % (inbox, key)))
    expect([c[0] for c in ch] == ["10"] and not adds and not dels,
           "%s: flag set elsewhere reported as a change (%s)" % (label, ch))
    # ... and the next no-change Sync is a SELECT again; a flag cleared elsewhere is seen.
    st, key, more, adds, ch, dels, cmds = sync_parts(d.cmd("sync %s %s 100" % (inbox, key)))
    expect(not ch and not adds and not dels, "%s: no change after the flag" % label)
    doveadm(dc, "flags", "remove", "-u", live.USER, "\\Flagged", "mailbox", "INBOX", "uid", "10")
    st, key, more, adds, ch, dels, cmds = sync_parts(d.cmd("sync %s %s 100" % (inbox, key)))
    expect([c[0] for c in ch] == ["10"] and not adds and not dels,
           "%s: flag cleared elsewhere reported as a change (%s)" % (label, ch))
    # An expunge
    doveadm(dc, "expunge", "-u", live.USER, "mailbox", "INBOX", "uid", "20")
    st, key, more, adds, ch, dels, cmds = sync_parts(d.cmd("sync %s %s 100" % (inbox, key)))
    expect(dels == ["20"] and not adds and not ch, "%s: expunge reported as a delete" % label)
    # The phone's read flag: done on the server, not echoed
    st, key, more, adds, ch, dels, cmds = sync_parts(d.cmd("read %s %s 31" % (inbox, key)))
    expect(st == "1", "%s: phone's read accepted" % label)
    flags = doveadm(dc, "fetch", "-u", live.USER, "flags", "mailbox", "INBOX", "uid", "31")
    expect("\\Seen" in flags, "%s: \\Seen set on the server" % label)
    st, key, more, adds, ch, dels, cmds = sync_parts(d.cmd("sync %s %s 100" % (inbox, key)))
    expect(not ch and not adds and not dels, "%s: phone's read not echoed" % label)
    # The phone's delete: to Trash, not echoed
    out = d.cmd("delete %s %s 40" % (inbox, key))
    st, key, more, adds, ch, dels, cmds = sync_parts(out)
    expect(st == "1", "%s: phone's delete accepted (%s)" % (label, out[:300]))
    trash = doveadm(dc, "search", "-u", live.USER, "mailbox", "Trash", "ALL")
    expect(len(trash.strip().splitlines()) == 1, "%s: the message is in Trash" % label)
    gone = doveadm(dc, "search", "-u", live.USER, "mailbox", "INBOX", "uid", "40")
    expect(gone.strip() == "", "%s: and gone from INBOX" % label)
    st, key, more, adds, ch, dels, cmds = sync_parts(d.cmd("sync %s %s 100" % (inbox, key)))
    expect(not ch and not adds and not dels, "%s: phone's delete not echoed" % label)
    # MoveItems: the new UID the server reports (COPYUID), not echoed, added in Trash
    trash_id = folders["Trash"][0]
    out = d.cmd("move %s 50 %s" % (inbox, trash_id))
    xml = out.split("\n")[0]
    dst = (tags(xml, "DstMsgId") or [""])[0]
    expect(tags(xml, "Status") == ["3"] and dst == "2",
           "%s: MoveItems: Status 3, DstMsgId the UID in Trash (%s)" % (label, xml[:300]))
    moved = doveadm(dc, "fetch", "-u", live.USER, "hdr.subject", "mailbox", "Trash", "uid", dst)
    expect("Message 50" in moved, "%s: the moved message is Trash's UID %s" % (label, dst))
    st, key, more, adds, ch, dels, cmds = sync_parts(d.cmd("sync %s %s 100" % (inbox, key)))
    expect(not ch and not adds and not dels,
           "%s: the phone's move not echoed (%s %s %s)" % (label, ch, adds, dels))
    st, tkey, more, adds, ch, dels, cmds = sync_parts(d.cmd("sync %s 0 100" % trash_id))
    st, tkey, more, adds, ch, dels, cmds = sync_parts(d.cmd("sync %s %s 100" % (trash_id, tkey)))
    expect(dst in [a[0] for a in adds], "%s: Trash's Sync adds the moved message" % label)
    # EmptyFolderContents of Trash: emptied on the server, nothing echoed to the phone
    out = d.cmd("empty %s" % trash_id)
    xml = out.split("\n")[0]
    expect(tags(xml, "Status")[-1:] == ["1"], "%s: EmptyFolderContents: Status 1 (%s)" %
           (label, xml[:300]))
    left = doveadm(dc, "search", "-u", live.USER, "mailbox", "Trash", "ALL")
    expect(left.strip() == "", "%s: Trash emptied on the server (%r)" % (label, left))
    st, tkey, more, adds, ch, dels, cmds = sync_parts(d.cmd("sync %s %s 100" % (trash_id, tkey)))
    expect(st == "1" and not adds and not ch and not dels,
           "%s: the emptied Trash: nothing echoed (%s %s %s)" % (label, adds, ch, dels))
    summary.append(("empty", st))
    # SmartReply / SmartForward's marks
    expect("MARK 1" in d.cmd("mark %s 60 0" % inbox), "%s: mark answered" % label)
    expect("MARK 1" in d.cmd("mark %s 61 1" % inbox), "%s: mark forwarded" % label)
    f60 = doveadm(dc, "fetch", "-u", live.USER, "flags", "mailbox", "INBOX", "uid", "60")
    f61 = doveadm(dc, "fetch", "-u", live.USER, "flags", "mailbox", "INBOX", "uid", "61")
    expect("\\Answered" in f60 and "$Forwarded" not in f60, "%s: \\Answered on the server" % label)
    expect("$Forwarded" in f61, "%s: $Forwarded on the server (%s)" % (label, f61.strip()))
    search_cases(d, dc, label, inbox, summary)
    # UIDVALIDITY: a folder recreated
    doveadm(dc, "mailbox", "create", "-u", live.USER, "Work")
    doveadm(dc, "save", "-u", live.USER, "-m", "Work", input="Subject: w1\n\nw\n")
    out = d.cmd("foldersync 0")
    work_id = [tags(a, "ServerId")[0] for a in re.findall(r"<Add>(.*?)</Add>", out.split("\n")[0])
               if tags(a, "DisplayName")[0] == "Work"][0]
    st, wkey, more, adds, ch, dels, cmds = sync_parts(d.cmd("sync %s 0 100" % work_id))
    st, wkey, more, adds, ch, dels, cmds = sync_parts(d.cmd("sync %s %s 100" % (work_id, wkey)))
    expect(len(adds) == 1, "%s: Work synced" % label)
    doveadm(dc, "mailbox", "delete", "-u", live.USER, "Work")
    doveadm(dc, "mailbox", "create", "-u", live.USER, "Work")
    doveadm(dc, "save", "-u", live.USER, "-m", "Work", input="Subject: w2\n\nw\n")
    st, wkey, more, adds, ch, dels, cmds = sync_parts(d.cmd("sync %s %s 100" % (work_id, wkey)))
    expect(st == "3", "%s: UIDVALIDITY changed: Status 3" % label)
    # Large messages: the prefetch is cut at 8 MiB of bodies (MoreAvailable), not a
    # window of 100 held whole
    doveadm(dc, "mailbox", "create", "-u", live.USER, "Big")
    filler = ("x" * 76 + "\n") * 12000  # ~924 KB each
    for i in range(1, 21):
        doveadm(dc, "save", "-u", live.USER, "-m", "Big",
                input="Subject: big %d\n\n%s" % (i, filler))
    out = d.cmd("foldersync 0")
    big_id = [tags(a, "ServerId")[0] for a in re.findall(r"<Add>(.*?)</Add>", out.split("\n")[0])
              if tags(a, "DisplayName")[0] == "Big"][0]
    st, bkey, more, adds, ch, dels, cmds = sync_parts(d.cmd("sync %s 0 100" % big_id))
    got, sizes = [], []
    while True:
        st, bkey, more, adds, ch, dels, cmds = sync_parts(d.cmd("sync %s %s 100" % (big_id, bkey)))
        if st != "1":
            raise Failure("%s: Big: Sync status %s" % (label, st))
        got += [a[0] for a in adds]
        sizes.append(len(adds))
        if not more or len(sizes) > 10:
            break
    expect(sorted(int(u) for u in got) == list(range(1, 21)) and max(sizes) <= 9,
           "%s: 20 messages of 924 KB in windows of %s (8 MiB each at most)" % (label, sizes))
    summary.append(("big", sizes))
    summary.append(attachment_cases(d, dc, work, label))
    summary.append(large_cases(d, dc, label))
    summary.append(("folders", folder_cases(d, dc, label)))
    summary.append(("server renames", server_rename_cases(d, dc, label)))
    # The cap: 5 at once, cap 2
    out = d.cmd("concurrent 5")
    most = int(re.search(r"MAXOPEN (\d+)", out).group(1))
    expect(most <= 2 and out.count("XML ") == 5, "%s: 5 concurrent requests, %d connections at most" % (label, most))
    d.close()
    # A wrong password
    d = Driver(exe, url, dc.ca, store, 2, password="wrong")
    out = d.cmd("foldersync 0")
    expect("fail=1" in out, "%s: wrong password: auth refused (%s)" % (label, out.splitlines()[-1]))
    d.close()
    return summary


def pdfish(n, seed):
    """n bytes that look like a PDF and hold every byte value (NULs, CR, LF, '=')."""
    head = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
    body = bytes((i * 7 + seed + (i >> 8)) & 0xff for i in range(n - len(head)))
    return head + body


def att_message(subject, parts):
    """A multipart/mixed message: a text part, then (type, name, encoding, bytes) parts."""
    import base64
    import quopri
    b = "b-%s" % uuid.uuid4().hex
    out = ["From: Bob <bob@example.com>", "To: alice@example.com", "Subject: %s" % subject,
           "MIME-Version: 1.0", 'Content-Type: multipart/mixed; boundary="%s"' % b, "",
           "--" + b, "Content-Type: text/plain; charset=utf-8", "", "See attached.", ""]
    for ctype, name, enc, data in parts:
        out += ["--" + b, "Content-Type: %s; name=\"%s\"" % (ctype, name),
                "Content-Disposition: attachment; filename=\"%s\"" % name,
                "Content-Transfer-Encoding: %s" % enc, ""]
        if enc == "base64":
            out.append(base64.encodebytes(data).decode().rstrip("\n"))
        else:
            out.append(quopri.encodestring(data).decode().rstrip("\n"))
        out.append("")
    out += ["--" + b + "--", ""]
    return "\n".join(out)


def attachment_cases(d, dc, work, label):
    """ItemOperations Fetch (whole, by Range) and GetAttachment of attachments from IMAP."""
    import base64
    doveadm(dc, "mailbox", "create", "-u", live.USER, "Att")
    small = pdfish(300000, 1)
    qp = ("Caf\u00e9 = 100%\t\n" * 4000).encode()
    big = pdfish(3 * 1024 * 1024 + 17, 2)
    doveadm(dc, "save", "-u", live.USER, "-m", "Att",
            input=att_message("att small", [("application/pdf", "a.pdf", "base64", small),
                                             ("text/plain", "n.txt", "quoted-printable", qp)]))
    doveadm(dc, "save", "-u", live.USER, "-m", "Att",
            input=att_message("att big", [("application/pdf", "big.pdf", "base64", big)]))
    out = d.cmd("foldersync 0")
    att_id = [tags(a, "ServerId")[0] for a in re.findall(r"<Add>(.*?)</Add>", out.split("\n")[0])
              if tags(a, "DisplayName")[0] == "Att"][0]
    st, akey, more, adds, ch, dels, cmds = sync_parts(d.cmd("sync %s 0 100" % att_id))
    out = d.cmd("sync %s %s 100" % (att_id, akey))
    refs = tags(out.split("\n")[0], "FileReference")
    expect(len(refs) >= 2, "%s: Sync lists the attachments' FileReferences (%s)" % (label, refs))
    ref = [r for r in refs if r.endswith(":1:2")][0]

    def fetch(r, rng=None):
        xml = d.cmd("fetchfile %s%s" % (r, " " + rng if rng else "")).split("\n")[0]
        data = tags(xml, "Data")
        return (tags(xml, "Status"), (tags(xml, "ContentType") or [""])[0],
                (tags(xml, "Total") or [""])[0], (tags(xml, "Range") or [""])[0],
                base64.b64decode(data[0]) if data else None)

    st, ctype, total, rng, data = fetch(ref)
    expect(st[-1:] == ["1"] and ctype == "application/pdf" and total == str(len(small)) and
           data == small, "%s: ItemOperations Fetch of a PDF attachment: its bytes (%s %s %s %s)" %
           (label, st, ctype, total, data and len(data)))
    st, ctype, total, rng, data = fetch(ref, "1000-70999")
    expect(st[-1:] == ["1"] and rng == "1000-70999" and data == small[1000:71000] and
           total == str(len(small)), "%s: ... by Range 1000-70999 (%s of %s)" % (label, rng, total))
    st, ctype, total, rng, data = fetch(ref, "299990-400000")
    expect(st[-1:] == ["1"] and rng == "299990-299999" and data == small[299990:],
           "%s: ... a Range past the end is cut at it (%s)" % (label, rng))
    st, ctype, total, rng, data = fetch(ref[:-1] + "3")
    expect(st[-1:] == ["1"] and ctype == "text/plain" and data == qp.replace(b"\n", b"\r\n"),
           "%s: a quoted-printable attachment decoded (%s, %s bytes)" % (label, ctype, total))
    f = os.path.join(work, "att-%s.bin" % label)
    out = d.cmd("getatt %s %s" % (ref, f))
    with open(f, "rb") as fh:
        got = fh.read()
    expect(("ATT 200 application/pdf %d" % len(small)) in out and got == small,
           "%s: GetAttachment: the same bytes (%s)" % (label, out.splitlines()[0]))
    st, ctype, total, rng, data = fetch(ref[:-1] + "9")
    expect(st[-1:] == ["15"], "%s: an unknown section: Status 15 (%s)" % (label, st))
    out = d.cmd("getatt %s %s" % (ref[:-1] + "9", f))
    expect("ATT 500" in out, "%s: GetAttachment of an unknown section: 500" % label)
    # A message over the 1 MiB the item fetch takes: its attachment still listed and whole
    big_refs = [r for r in refs if r.endswith(":2:2")]
    print("      the 3 MiB message's attachment in Sync: %s" % (big_refs or "not listed"))
    bref = big_refs[0] if big_refs else ref[:-len("1:2")] + "2:2"
    st, ctype, total, rng, data = fetch(bref)
    expect(st[-1:] == ["1"] and data == big,
           "%s: a 3 MiB attachment of a message past the item cap: its bytes (%s)" % (label, total))
    return ("att", ctype, total, len(refs))


def mime_message(subject, top, parts):
    """A multipart/TOP message of (headers, body) parts (bodies as written, LF line ends)."""
    b = "b-%s" % uuid.uuid4().hex
    out = ["From: Bob <bob@example.com>", "To: alice@example.com", "Subject: %s" % subject,
           "MIME-Version: 1.0", 'Content-Type: multipart/%s; boundary="%s"' % (top, b), ""]
    for headers, body in parts:
        out += ["--" + b] + headers + ["", body]
    out += ["--" + b + "--", ""]
    return "\n".join(out)


def b64_part(ctype, name, data):
    import base64
    return (["Content-Type: %s; name=\"%s\"" % (ctype, name),
             "Content-Disposition: attachment; filename=\"%s\"" % name,
             "Content-Transfer-Encoding: base64"],
            base64.encodebytes(data).decode().rstrip("\n"))


def item_of(xml):
    """The first fetched item's fields of an ItemOperations answer."""
    body = re.search(r"<Body(?: [^>]*)?>(.*?)</Body>", xml)
    body = body.group(1) if body else ""
    return {"status": (tags(xml, "Status") or [""])[-1],
            "type": (tags(body, "Type") or [""])[0],
            "est": int((tags(body, "EstimatedDataSize") or ["-1"])[0]),
            "truncated": (tags(body, "Truncated") or [""])[0] == "1",
            "data": ([html_lib.unescape(x) for x in tags(body, "Data")] or [None])[0],
            "atts": [(tags(a, "DisplayName")[0], int(tags(a, "EstimatedDataSize")[0]),
                      tags(a, "FileReference")[0])
                     for a in re.findall(r"<Attachment>(.*?)</Attachment>", xml)]}


def large_cases(d, dc, label):
    """Messages over the 1 MiB item fetch, read from their outline (BODYSTRUCTURE, header,
    the main body's text parts): a text part after a 3 MiB attachment, an attachment after
    the first MiB, an HTML body over the text cap, the MIME (type 4) cut honestly."""
    import base64
    first, after = pdfish(3 * 1024 * 1024, 3), pdfish(200000, 4)
    text = "Text after the attachment: marker-after-%s.\n" % label + "More words.\n" * 50
    doveadm(dc, "mailbox", "create", "-u", live.USER, "Large")
    doveadm(dc, "save", "-u", live.USER, "-m", "Large", input=mime_message("large text after", "mixed", [
        b64_part("application/pdf", "first.pdf", first),
        (["Content-Type: text/plain; charset=utf-8"], text),
        b64_part("application/octet-stream", "after.bin", after)]))
    html = ("<html><body><p>HTML marker-html-%s</p>\n" % label +
            "".join("<p>line %d of a long HTML body</p>\n" % i for i in range(50000)) +
            "<p>the end</p></body></html>")
    doveadm(dc, "save", "-u", live.USER, "-m", "Large", input=mime_message("large html", "alternative", [
        (["Content-Type: text/plain; charset=utf-8"], "Plain version marker-plain-%s." % label),
        (["Content-Type: text/html; charset=utf-8"], html)]))
    plain = "Plain marker-single-%s.\n" % label + "A long plain text line.\n" * 100000
    doveadm(dc, "save", "-u", live.USER, "-m", "Large",
            input="From: Bob <bob@example.com>\nSubject: large plain\n\n" + plain)
    sizes = doveadm(dc, "fetch", "-u", live.USER, "uid size.virtual", "mailbox", "Large")
    vsize = {int(u): int(v) for u, v in re.findall(r"uid: (\d+)\nsize.virtual: (\d+)", sizes)}
    out = d.cmd("foldersync 0")
    lid = [tags(a, "ServerId")[0] for a in re.findall(r"<Add>(.*?)</Add>", out.split("\n")[0])
           if tags(a, "DisplayName")[0] == "Large"][0]
    st, key, more, adds, ch, dels, cmds = sync_parts(d.cmd("sync %s 0 100" % lid))
    out = d.cmd("sync %s %s 100" % (lid, key))
    xml = out.split("\n")[0]
    items = {tags(a, "Subject")[0]: (tags(a, "ServerId")[0], item_of(a))
             for a in re.findall(r"<Add>(.*?)</Add>", xml)}
    expect(sorted(items) == ["large html", "large plain", "large text after"],
           "%s: large: the messages synced (%s)" % (label, sorted(items)))
    sid, it = items["large text after"]
    expect(it["data"] is not None and ("marker-after-%s" % label) in it["data"] and
           not it["truncated"],
           "%s: large: the text after a 3 MiB attachment is the body (%s)" %
           (label, (it["data"] or "")[:40]))
    names = [(a[0], a[1]) for a in it["atts"]]
    expect([a[0] for a in names] == ["first.pdf", "after.bin"] and
           abs(names[0][1] - len(first)) <= 3 and abs(names[1][1] - len(after)) <= 3,
           "%s: large: both attachments listed with their sizes (%s)" % (label, names))
    ref = it["atts"][1][2]
    xml = d.cmd("fetchfile %s" % ref).split("\n")[0]
    data = tags(xml, "Data")
    expect(data and base64.b64decode(data[0]) == after and tags(xml, "Total") == [str(len(after))],
           "%s: large: the attachment after the first MiB fetched whole (%s)" %
           (label, tags(xml, "Total")))
    # MIME: the first bytes, Truncated, the message's size
    it = item_of(d.cmd("fetch %s %s 4 0 0" % (lid, sid)).split("\n")[0])
    expect(it["status"] == "1" and it["type"] == "4" and it["truncated"] and
           it["est"] == vsize[int(sid)] and (it["data"] or "").startswith("From: Bob"),
           "%s: large: Type 4 is cut, Truncated, EstimatedDataSize the message's %d (%s %s)" %
           (label, vsize[int(sid)], it["est"], it["truncated"]))
    it = item_of(d.cmd("fetch %s %s 4 100 0" % (lid, sid)).split("\n")[0])
    expect(it["truncated"] and len(it["data"] or "") <= 100 and it["est"] == vsize[int(sid)],
           "%s: large: Type 4 with TruncationSize 100: %d bytes" % (label, len(it["data"] or "")))
    it = item_of(d.cmd("fetch %s %s 4 0 1" % (lid, sid)).split("\n")[0])
    expect(it["truncated"] and it["data"] is None, "%s: large: Type 4 AllOrNone: no data" % label)
    # An HTML body over the text cap: cut honestly; its plain alternative whole
    sid, it = items["large html"]
    it = item_of(d.cmd("fetch %s %s 2 0 0" % (lid, sid)).split("\n")[0])
    got = it["data"] or ""
    expect(it["type"] == "2" and it["truncated"] and it["est"] >= len(html) and
           ("marker-html-%s" % label) in got and 0 < len(got) < len(html),
           "%s: large: an HTML body of %d bytes: %d given, Truncated, EstimatedDataSize %d" %
           (label, len(html), len(got), it["est"]))
    it = item_of(d.cmd("fetch %s %s 2 0 1" % (lid, sid)).split("\n")[0])
    expect(it["truncated"] and it["data"] is None, "%s: large: ... with AllOrNone: no data" % label)
    it = item_of(d.cmd("fetch %s %s 1 0 0" % (lid, sid)).split("\n")[0])
    expect(it["type"] == "1" and not it["truncated"] and
           it["data"] == "Plain version marker-plain-%s." % label,
           "%s: large: its plain alternative whole (%s)" % (label, it["data"]))
    # Found by a Search (its bodies fetched ahead): the same item, read from its outline
    st, total, res, sxml = search(d, lid, "marker-after-%s" % label)
    r = (re.findall(r"<Result>(.*?)</Result>", sxml) or [""])[0]
    it = item_of(r)
    expect(st == "1" and [x[2] for x in res] == ["large text after"] and
           ("marker-after-%s" % label) in (it["data"] or "") and
           [a[0] for a in it["atts"]] == ["first.pdf", "after.bin"],
           "%s: large: a Search finds it, its text and both attachments in the result" % label)
    # A message of one text/plain part of 2.4 MB: its first 512 KiB, Truncated
    sid, it = items["large plain"]
    got = it["data"] or ""
    expect(it["truncated"] and it["est"] >= len(plain) and
           got.startswith("Plain marker-single-%s." % label) and 0 < len(got) <= 512 * 1024,
           "%s: large: a single text part of %d bytes in Sync: %d given, Truncated, "
           "EstimatedDataSize %d" % (label, len(plain), len(got), it["est"]))
    return ("large", len(items))


def parse_thread_cases(exe, dc, url, work):
    """A window of 100 messages of about 70 KB (an HTML-only body and an attachment each),
    synced by a backend that parses on the loop and by one that parses on the parse thread
    (ABQ_PARSE_THREAD): the phone gets the same answer; the thread parsed all 100; the
    loop's longest gap while the window was built is reported for both."""
    import base64
    doveadm(dc, "mailbox", "create", "-u", live.USER, "Heavy")
    for i in range(100):
        html = ("<html><body><h1>Report %d</h1>\n" % i +
                "".join("<p>Row %d of report %d: <b>value</b> %d</p>\n" % (k, i, k * i)
                        for k in range(900)) + "</body></html>")
        doveadm(dc, "save", "-u", live.USER, "-m", "Heavy", input=mime_message(
            "heavy %03d" % i, "mixed", [(["Content-Type: text/html; charset=utf-8"], html),
                                        b64_part("application/pdf", "r%d.pdf" % i,
                                                 pdfish(20000, i))]))
    answers, loops = {}, {}
    for mode, env in (("loop", None), ("thread", dict(os.environ, ABQ_PARSE_THREAD="1"))):
        d = Driver(exe, url, dc.ca, "sqlite:" + os.path.join(work, "pt-%s.sqlite" % mode), 2,
                   env=env)
        out = d.cmd("foldersync 0")
        hid = [tags(a, "ServerId")[0] for a in re.findall(r"<Add>(.*?)</Add>", out.split("\n")[0])
               if tags(a, "DisplayName")[0] == "Heavy"][0]
        st, key, more, adds, ch, dels, cmds = sync_parts(d.cmd("sync %s 0 100" % hid))
        out = d.cmd("sync %s %s 100" % (hid, key))
        d.close()
        xml = out.split("\n")[0]
        answers[mode] = re.sub(r"<(SyncKey|CollectionId)>[^<]*</\1>", "", xml)
        m = re.search(r"LOOP gap_ms=([0-9.]+) parsed=(\d+)", out)
        loops[mode] = (float(m.group(1)), int(m.group(2))) if m else None
        adds = re.findall(r"<Add>(.*?)</Add>", xml)
        expect(len(adds) == 100 and all(("Row 899 of report" in a) for a in adds),
               "parse thread (%s): a window of 100 HTML-only messages, each with its text"
               % mode)
    expect(answers["loop"] == answers["thread"],
           "parse thread: the window is the same whether parsed on the loop or on the thread")
    expect(loops["loop"] is not None and loops["loop"][1] == 0 and
           loops["thread"] is not None and loops["thread"][1] == 100,
           "parse thread: the thread parsed all 100 messages, the loop none (%s)" % loops)
    print("      the loop's longest gap building the window: %.1f ms parsing on the loop, "
          "%.1f ms with the parse thread" % (loops["loop"][0], loops["thread"][0]))


def eas_date(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t))


def search(d, coll="-", text=None, after=None, before=None):
    """A mailbox Search: (store status, total, [(collection, longid, subject)], xml)."""
    hx = text.encode("utf-8").hex() if text is not None else "-"
    out = d.cmd("search %s %s %s %s" % (coll, eas_date(after) if after else "-",
                                         eas_date(before) if before else "-", hx))
    xml = out.split("\n")[0]
    store = (re.findall(r"<Store>(.*)</Store>", xml) or [""])[0]
    res = []
    for r in re.findall(r"<Result>(.*?)</Result>", store):
        if "<LongId>" in r:
            res.append((tags(r, "CollectionId")[0], tags(r, "LongId")[0],
                        (tags(r, "Subject") or [""])[0]))
    stats = re.search(r"STATS runs=\d+ cmds=\d+", out)
    print("      search %r %s: %s" % (text, coll, stats.group(0) if stats else "?"), flush=True)
    st = (re.findall(r"^<Status>(\d+)</Status>", store) or [""])[0]
    total = (tags(store, "Total") or [""])[0]
    search.runs = int(re.search(r"runs=(\d+)", stats.group(0)).group(1)) if stats else -1
    return st, total, res, xml


def search_cases(d, dc, label, inbox, summary):
    """Search: subject words, a sender, a body word, a date range, a folder, non-ASCII, quotes."""
    doveadm(dc, "mailbox", "create", "-u", live.USER, "Projects")
    doveadm(dc, "save", "-u", live.USER, "-m", "INBOX",
            input="From: =?UTF-8?Q?Zo=C3=AB?= <zoe@example.net>\nTo: alice@example.com\n"
                  "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\n"
                  "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n"
                  "The zebra is at C:\\dir \"quoted\" here.\n")
    doveadm(dc, "save", "-u", live.USER, "-m", "Projects",
            input="From: Dan <dan@example.org>\nTo: alice@example.com\nSubject: Plan\n\n"
                  "A zebra project.\n")
    out = d.cmd("foldersync 0")
    projects = [tags(a, "ServerId")[0] for a in re.findall(r"<Add>(.*?)</Add>", out.split("\n")[0])
                if tags(a, "DisplayName")[0] == "Projects"][0]
    got = []
    st, total, res, xml = search(d, text="Message 1999")
    expect(st == "1" and total == "1" and [r[2] for r in res] == ["Message 1999"] and
           res[0][1] == "%s:1999" % inbox,
           "%s: Search: subject words (%s)" % (label, xml[:400]))
    got.append(total)
    st, total, res, xml = search(d, text="ZOE@example.net")
    expect(st == "1" and total == "1" and res[0][2] == "Grüße aus Köln",
           "%s: Search: a sender (%s)" % (label, xml[:400]))
    st, total, res, xml = search(d, text="zebra")
    expect(st == "1" and total == "2" and sorted(r[0] for r in res) == sorted([inbox, projects]),
           "%s: Search: a body word in every folder (%s)" % (label, xml[:400]))
    st, total, res, xml = search(d, coll=projects, text="zebra")
    expect(total == "1" and res[0][0] == projects and res[0][2] == "Plan",
           "%s: Search: one folder (%s)" % (label, xml[:400]))
    t0 = 1790000000
    st, total, res, xml = search(d, after=t0 + 100 * 60 + 30, before=t0 + 105 * 60 + 30)
    expect(st == "1" and total == "5" and
           [r[2] for r in res] == ["Message %d" % i for i in (105, 104, 103, 102, 101)],
           "%s: Search: a date range, newest first (%s %s)" % (label, [r[2] for r in res], xml[:300]))
    expect(search.runs == 3, "%s: Search: 5 results in 3 runs, fetched ahead (%d)" %
           (label, search.runs))
    st, total, res, xml = search(d, text="grüße KÖLN")
    expect(st == "1" and total == "1" and res[0][2] == "Grüße aus Köln",
           "%s: Search: non-ASCII words (%s)" % (label, xml[:400]))
    st, total, res, xml = search(d, text='C:\\dir "quoted"')
    expect(st == "1" and total == "1", "%s: Search: a backslash and quotes (%s)" % (label, xml[:400]))
    st, total, res, xml = search(d, text='zebra\r\n"A001 LOGOUT')
    expect(st == "1" and total == "0" and not res,
           "%s: Search: CR/LF and a quote are no command (%s)" % (label, xml[:400]))
    st, total, res, xml = search(d, text="nothing-matches-this")
    expect(st == "1" and total == "0" and not res and
           ("<Result/>" in xml or "<Result></Result>" in xml),
           "%s: Search: no match: an empty Result, Total 0 (%s)" % (label, xml[:400]))
    got.append(total)
    summary.append(("search", got))


SUBMISSION = """
protocols = imap submission
hostname = imapmbx.example.test
submission_relay_host = 127.0.0.1
submission_relay_port = {relay}
submission_relay_ssl = no
submission_relay_trusted = no
service submission-login {{
  inet_listener submission {{
    address = 127.0.0.1
    port = {sub}
  }}
}}
"""


def relay_mail(maildir, marker, seconds=10):
    """The relay's mails that contain marker (after a short wait for a duplicate)."""
    return maildir_lib.wait_for(maildir, marker, seconds)


def send_cases(exe, dc, url, work, sub_port, maildir):
    """SendMail through the backend's send op (see the top)."""
    env = dict(os.environ, ABQ_SUBMISSION_URL="smtp://127.0.0.1:%d" % sub_port,
               ABQ_SUBMISSION_FROM="alice@example.test", ABQ_SUBMISSION_INSECURE="1")
    store = "sqlite:" + os.path.join(work, "store-send.sqlite")
    d = Driver(exe, url, dc.ca, store, 2, env=env)

    def sendmail(save, body):
        path = os.path.join(work, "send-%s.eml" % uuid.uuid4().hex[:8])
        with open(path, "w") as f:
            f.write(body)
        return d.cmd("sendmail %d %s" % (save, path))

    def in_sent(marker):
        return doveadm(dc, "search", "-u", live.USER, "mailbox", "Sent", "SUBJECT", marker).strip().splitlines()

    # 1. SaveInSentItems, a Bcc
    marker = "imapmbx-send-%s" % uuid.uuid4().hex[:10]
    out = sendmail(1, "From: Alice <alice@example.test>\r\nTo: Bob <bob@example.test>\r\n"
                      "Bcc: Dave <dave@elsewhere.test>\r\nSubject: %s\r\n\r\nHello Bob.\r\n" % marker)
    runs = int(re.search(r"runs=(\d+)", out).group(1))
    expect(out.startswith("HTTP 200"), "send: SendMail with SaveInSent answered 200 (%s)" % out.replace("\n", " "))
    found = relay_mail(maildir, marker)
    expect(len(found) == 1, "send: the relay has it once (%d), though the request ran %d times" % (len(found), runs))
    head = found[0].partition(b"\r\n\r\n")[0]
    rcpt = re.search(rb"X-Fixture-Rcpt-To: ([^\r\n]*)", head).group(1)
    expect(rcpt == b"bob@example.test, dave@elsewhere.test" and re.search(rb"(?im)^bcc:", head) is None,
           "send: envelope bob and dave, no Bcc header at the relay (%r)" % rcpt)
    uids = in_sent(marker)
    expect(len(uids) == 1, "send: one copy in Sent (%s)" % uids)
    copy = doveadm(dc, "fetch", "-u", live.USER, "flags hdr", "mailbox", "Sent", "SUBJECT", marker)
    expect("\\Seen" in copy and re.search(r"(?m)^Bcc: Dave <dave@elsewhere.test>", copy),
           "send: the copy is read and keeps the Bcc")
    mid_sent = re.search(r"(?im)^Message-ID: (\S+)", copy).group(1)
    mid_relay = re.search(rb"(?im)^Message-ID: (\S+)", head).group(1).decode()
    expect(mid_sent == mid_relay, "send: the copy's Message-ID is the one sent (%s)" % mid_sent)
    # 2. No SaveInSentItems
    marker = "imapmbx-nosave-%s" % uuid.uuid4().hex[:10]
    out = sendmail(0, "From: alice@example.test\r\nTo: bob@example.test\r\nSubject: %s\r\n\r\nx\r\n" % marker)
    expect(out.startswith("HTTP 200") and len(relay_mail(maildir, marker)) == 1 and not in_sent(marker),
           "send: without SaveInSent: sent, nothing in Sent")
    # 3. A recipient the server refuses (an 8-bit local part, no SMTPUTF8)
    marker = "imapmbx-refused-%s" % uuid.uuid4().hex[:10]
    out = sendmail(1, "From: alice@example.test\r\nTo: bob@example.test, j\u00f6rg@elsewhere.test\r\n"
                      "Subject: %s\r\n\r\nx\r\n" % marker)
    expect(tags(out, "Status") == ["116"], "send: refused recipient: Status 116 (%s)" % out.split("\n")[0])
    expect(not relay_mail(maildir, marker, 2) and not in_sent(marker),
           "send: refused recipient: nothing at the relay, nothing in Sent")
    # 4. SmartReply to Message 70 of the Inbox
    xml = d.cmd("foldersync 0").split("\n")[0]
    inbox = [tags(a, "ServerId")[0] for a in re.findall(r"<Add>(.*?)</Add>", xml)
             if tags(a, "Type")[0] == "2"][0]
    marker = "imapmbx-reply-%s" % uuid.uuid4().hex[:10]
    path = os.path.join(work, "reply-%s.eml" % marker)
    with open(path, "w") as f:
        f.write("From: alice@example.test\r\nTo: bob@example.com\r\nSubject: Re: Message 70 %s\r\n"
                "\r\nMy answer.\r\n" % marker)
    out = d.cmd("smartreply %s 70 1 %s" % (inbox, path))
    expect(out.startswith("HTTP 200"), "send: SmartReply answered 200 (%s)" % out.replace("\n", " "))
    found = relay_mail(maildir, marker)
    expect(len(found) == 1 and b"In-Reply-To: <m70@example.com>" in found[0] and
           b"My answer." in found[0] and b"> Body 70." in found[0],
           "send: SmartReply at the relay once, quoting the original, In-Reply-To it")
    flags = doveadm(dc, "fetch", "-u", live.USER, "flags", "mailbox", "INBOX", "uid", "70")
    expect("\\Answered" in flags and len(in_sent(marker)) == 1,
           "send: the original marked \\Answered, the reply in Sent")
    # 5. SmartForward of a message over the 1 MiB item fetch: its attachments whole
    import email
    import email.policy
    first, after = pdfish(1536 * 1024, 5), pdfish(200000, 6)
    doveadm(dc, "mailbox", "create", "-u", live.USER, "Fwd")
    doveadm(dc, "save", "-u", live.USER, "-m", "Fwd", input=mime_message("large to forward", "mixed", [
        b64_part("application/pdf", "first.pdf", first),
        (["Content-Type: text/plain; charset=utf-8"], "The text after the attachment."),
        b64_part("application/octet-stream", "after.bin", after)]))
    xml = d.cmd("foldersync 0").split("\n")[0]
    fwd = [tags(a, "ServerId")[0] for a in re.findall(r"<Add>(.*?)</Add>", xml)
           if tags(a, "DisplayName")[0] == "Fwd"][0]
    marker = "imapmbx-fwd-%s" % uuid.uuid4().hex[:10]
    path = os.path.join(work, "fwd-%s.eml" % marker)
    with open(path, "w") as f:
        f.write("From: alice@example.test\r\nTo: bob@example.com\r\nSubject: Fwd: large %s\r\n"
                "\r\nSee below.\r\n" % marker)
    out = d.cmd("smartforward %s 1 0 %s" % (fwd, path))
    expect(out.startswith("HTTP 200"), "send: SmartForward of a large message answered 200 (%s)" %
           out.replace("\n", " "))
    found = relay_mail(maildir, marker)
    got = {}
    if len(found) == 1:
        msg = email.message_from_bytes(found[0], policy=email.policy.default)
        for part in msg.iter_attachments():
            got[part.get_filename()] = part.get_payload(decode=True)
    expect(len(found) == 1 and got.get("first.pdf") == first and got.get("after.bin") == after and
           b"The text after the attachment." in found[0],
           "send: the forward of a 2.3 MB message carries both attachments whole and its text "
           "(%s)" % sorted((k, len(v)) for k, v in got.items()))
    d.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--driver", required=True)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--only-large", action="store_true",
                    help="only the large messages' cases (a quicker run)")
    ap.add_argument("--only-parse", action="store_true",
                    help="only the parse thread's cases (a quicker run)")
    a = ap.parse_args()
    results = {}
    ok = True
    for label, extra in (("full", ""), ("reduced", REDUCED)):
        d = tempfile.mkdtemp(prefix="abq-imapmbx-")
        dc = live.Dovecot(d)
        relay = None
        if extra:
            with open(dc.conf, "a") as f:
                f.write(extra)
        else:  # submission, relaying to the fixture's relay.py
            sub_port, relay_port = live.free_port(), live.free_port()
            maildir = os.path.join(d, "relay")
            with open(dc.conf, "a") as f:
                f.write(SUBMISSION.format(relay=relay_port, sub=sub_port))
            relay = subprocess.Popen([sys.executable, os.path.join(HERE, "..", "fixture", "relay.py"),
                                      "--port", str(relay_port), "--maildir", maildir],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(d, "relay.log"), "w"))
        try:
            seed(dc)
            dc.start()
            url = "imap://localhost:%d" % dc.imap_port
            if a.only_parse:
                results[label] = None
                if not extra:
                    parse_thread_cases(a.driver, dc, url, d)
                continue
            if a.only_large:
                drv = Driver(a.driver, url, dc.ca, "sqlite:" + os.path.join(d, "s.sqlite"), 2)
                results[label] = large_cases(drv, dc, label)
                drv.close()
                continue
            results[label] = scenario(a.driver, dc, url, d, label)
            if relay is not None:
                for _ in range(100):
                    try:
                        socket.create_connection(("127.0.0.1", relay_port), 0.2).close()
                        break
                    except OSError:
                        time.sleep(0.1)
                send_cases(a.driver, dc, url, d, sub_port, maildir)
                parse_thread_cases(a.driver, dc, url, d)
        except Failure as e:
            print("FAIL  %s" % e)
            ok = False
        finally:
            dc.stop()
            if relay is not None:
                relay.terminate()
                relay.wait(10)
            if not a.keep:
                shutil.rmtree(d, ignore_errors=True)
    d = tempfile.mkdtemp(prefix="abq-imapmbx-")
    try:
        objectid_cases(a.driver, d)
    except Failure as e:
        print("FAIL  %s" % e)
        ok = False
    finally:
        shutil.rmtree(d, ignore_errors=True)
    if ok:
        ok = results["full"] == results["reduced"]
        print(("ok    " if ok else "FAIL  ") + "the same answers without CONDSTORE/QRESYNC/ESEARCH")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
