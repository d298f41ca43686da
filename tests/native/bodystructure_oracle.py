#!/usr/bin/env python3
"""The attachments' IMAP sections checked against Dovecot's BODYSTRUCTURE.

Every message of tests/native/data is delivered to a scratch Maildir, a
preauthenticated Dovecot imap process is asked FETCH 1:* (BODYSTRUCTURE), and
each attachment msgconv-tool lists must name a part Dovecot numbers the same
way (RFC 3501 6.4.5) with the same content type. Dovecot refuses to serve
mail as root: run as root, it is started as nobody.
"""
import os, re, shutil, subprocess, sys, tempfile

def tokens(s):
    i = 0
    while i < len(s):
        c = s[i]
        if c in " \r\n":
            i += 1
        elif c in "()":
            yield c; i += 1
        elif c == '"':
            j, out = i + 1, []
            while s[j] != '"':
                if s[j] == "\\": j += 1
                out.append(s[j]); j += 1
            yield ("s", "".join(out)); i = j + 1
        elif c == "{":
            j = s.index("}", i); n = int(s[i + 1:j]); k = s.index("\n", j) + 1
            yield ("s", s[k:k + n]); i = k + n
        else:
            j = i
            while j < len(s) and s[j] not in " ()\r\n": j += 1
            w = s[i:j]; yield None if w == "NIL" else ("a", w); i = j

def parse(it):
    out = []
    for t in it:
        if t == "(": out.append(parse(it))
        elif t == ")": return out
        else: out.append(t[1] if t else None)
    return out

def leaves(b, prefix, out):
    """RFC 3501 section of every leaf: multipart children 1.., a lone body 1."""
    if not isinstance(b[0], list):
        out[prefix or "1"] = (b[0] + "/" + b[1]).lower()
        return
    for i, c in enumerate([c for c in b if isinstance(c, list)], 1):
        sec = f"{prefix}.{i}" if prefix else str(i)
        if isinstance(c[0], list):
            leaves(c, sec, out)
        else:
            out[sec] = (c[0] + "/" + c[1]).lower()

def main():
    tool, data = sys.argv[1], sys.argv[2]
    imap = "/usr/lib/dovecot/imap"
    if not os.path.exists(imap):
        print("dovecot imap not installed"); return 1
    tmp = tempfile.mkdtemp(prefix="msgconv-dovecot-")
    try:
        names = sorted(f for f in os.listdir(data) if f.endswith(".eml"))
        for d in ("new", "cur", "tmp"): os.makedirs(f"{tmp}/Maildir/{d}")
        for i, n in enumerate(names):
            shutil.copy(f"{data}/{n}", f"{tmp}/Maildir/new/{1000 + i}.{n}.host")
        conf = f"mail_location = maildir:{tmp}/Maildir\nlog_path = {tmp}/log\nssl = no\nprotocols = imap\n"
        cmd = [imap, "-c", f"{tmp}/dovecot.conf"]
        if os.getuid() == 0:
            conf += "mail_uid = 65534\nmail_gid = 65534\nfirst_valid_uid = 0\nfirst_valid_gid = 0\n"
            subprocess.run(["chown", "-R", "65534:65534", tmp], check=True)
            os.chmod(tmp, 0o755)
            cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + cmd
        open(f"{tmp}/dovecot.conf", "w").write(conf)
        env = dict(os.environ, USER="oracle", HOME=tmp)
        out = subprocess.run(cmd, input=b"a SELECT INBOX\r\nb UID FETCH 1:* (BODYSTRUCTURE)\r\nc LOGOUT\r\n",
                             env=env, capture_output=True, timeout=60).stdout.decode("utf-8", "replace")
        got = {}
        for m in re.finditer(r"^\* (\d+) FETCH \((?:UID \d+ )?BODYSTRUCTURE ", out, re.M):
            seq = int(m.group(1))
            tree = parse(tokens(out[m.end():]))[0]
            got[seq] = {}
            leaves(tree, "", got[seq])
        if len(got) != len(names):
            print("dovecot answered:\n" + out); return 1
        failed = checked = 0
        for i, n in enumerate(names, 1):
            res = subprocess.run([tool, f"{data}/{n}"], capture_output=True, text=True, check=True).stdout
            for sec, ctype in re.findall(r"^Attachment (\S+): \".*\" (\S+) ", res, re.M):
                checked += 1
                if got[i].get(sec) != ctype:
                    failed += 1
                    print(f"{n}: section {sec} is {ctype} for msgconv, {got[i].get(sec)} for Dovecot ({got[i]})")
        print(f"bodystructure_oracle: {len(names)} messages, {checked} attachments, {failed} differ")
        return 1 if failed or not checked else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

sys.exit(main())
