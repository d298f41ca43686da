#!/usr/bin/env python3
"""Phones in abqd's quarantine mailbox, for bench/mailbox.sh and bench/held.sh.

    mailbox_clients.py --port PORT prep --devices 100 [--prefix BENCHQ] [--proxied]
    mailbox_clients.py --port PORT hold --devices 100 --per 100 [--addrs 50]
                       [--addr-base 2] [--offset 0 --count N] [--inbox abq-inbox]

prep: each DeviceId (PREFIX000 ..) does what a quarantined phone does before it
holds a Ping (test_e2e.py's mailbox_inbox): FolderSync 0, Sync 0 on the Inbox,
then Sync GetChanges until nothing is left (the alert arrives as an Add). Then
one Ping with a 60 s heartbeat, which must be held (not answered Status 2), is
checked on the first device and dropped. With --proxied (Allowed devices, whose
Pings the upstream holds) only the FolderSync 0, and the probe Ping names
--inbox. In native mode
the same steps sync the user's real Inbox (its messages counted as alerts). Prints
    prep devices=N inbox=ID alerts=A statuses={...} seconds=S

hold: opens devices*per connections, each bound before connect to one of the
source addresses 127.0.0.(addr-base) .. 127.0.0.(addr-base+addrs-1) (round
robin), and sends on each a Ping on --inbox (HeartbeatInterval --heartbeat, 480)
for DeviceId PREFIX(i % devices). --offset and --count select the connections
i = offset .. offset+count-1 of the devices*per (so that several processes,
each under its descriptor limit, share one run). Sockets are bound with
IP_BIND_ADDRESS_NO_PORT: the port is then chosen at connect() by the whole
4-tuple, so tens of thousands of bound clients do not use up the ephemeral
ports that abqd's own upstream connections need. --batch connections are
opened at a time, --pause seconds apart (0). After --settle
seconds it prints
    clients opened=N failed=F answered=A holding=H statuses={...}
and then one line per answer as it arrives (wall-clock time, so the caller can
compare with the moment it ran abqctl):
    answer DEVICEID HTTP PINGSTATUS UNIXTIME
until SIGTERM or SIGINT, when it closes every connection and prints
"clients closed".

--accounts K spreads the devices over K accounts: device d logs in as
USER<d % K, four digits> (--user the prefix, "bench0007"), all with --password.
Python 3 standard library only; the WBXML is hand-encoded
(MS-ASWBXML code pages 0 AirSync, 7 FolderHierarchy, 13 Ping).
"""

import argparse
import asyncio
import base64
import collections
import resource
import signal
import socket
import sys
import time

PATH = "/Microsoft-Server-ActiveSync"
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)  # Linux
HDR = b"\x03\x01\x6a\x00"
FOLDERSYNC_0 = HDR + bytes.fromhex("00 07 56 52 03 30 00 01 01")


def s(text):
    return b"\x03" + text.encode() + b"\x00"


def sync_body(key, coll, get_changes):
    # Sync(45) Collections(5C) Collection(4F) SyncKey(4B) CollectionId(52)
    # GetChanges(13, empty) WindowSize(55)
    inner = b"\x4b" + s(key) + b"\x01" + b"\x52" + s(coll) + b"\x01"
    if get_changes:
        inner += b"\x13" + b"\x55" + s("100") + b"\x01"
    return HDR + b"\x00\x00\x45\x5c\x4f" + inner + b"\x01\x01\x01"


def ping_body(folder, heartbeat):
    # Ping(45) HeartbeatInterval(48) Folders(49) Folder(4A) Id(4B) Class(4C)
    return (HDR + b"\x00\x0d\x45\x48" + s(str(heartbeat)) + b"\x01\x49\x4a\x4b" + s(folder) +
            b"\x01\x4c" + s("Email") + b"\x01\x01\x01\x01")


def parse(body):
    """WBXML -> [(page, tag, text)] for every element with inline text (enough here)."""
    out, page, stack, i = [], 0, [], 4
    if len(body) < 4:
        return out
    # version, publicid (mb_u_int32), charset (mb_u_int32), strtbl len (mb_u_int32)
    i = 1
    for _ in range(3):
        while body[i] & 0x80:
            i += 1
        i += 1
    while i < len(body):
        t = body[i]
        i += 1
        if t == 0x00:
            page = body[i]
            i += 1
        elif t == 0x01:
            if stack:
                stack.pop()
        elif t == 0x03:
            j = body.index(b"\x00", i)
            if stack:
                out.append((stack[-1][0], stack[-1][1], body[i:j].decode("utf-8", "replace")))
            i = j + 1
        elif t == 0xC3:
            n = 0
            while True:
                b = body[i]
                i += 1
                n = (n << 7) | (b & 0x7F)
                if not b & 0x80:
                    break
            i += n
        elif t & 0x40:
            stack.append((page, t & 0x3F))
        else:
            out.append((page, t & 0x3F, ""))  # an empty element, e.g. MoreAvailable
    return out


def first(events, page, tag):
    for p, t, text in events:
        if p == page and t == tag:
            return text
    return None


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def account(a, d):
    """Device d's account (see --accounts)."""
    return "%s%04d" % (a.user, d % a.accounts) if a.accounts else a.user


def request(a, cmd, dev, body, user=None):
    user = user or a.user
    auth = base64.b64encode(("%s:%s" % (user, a.password)).encode()).decode()
    head = ("POST %s?Cmd=%s&User=%s&DeviceId=%s&DeviceType=iPhone HTTP/1.1\r\n"
            "Host: 127.0.0.1:%d\r\nAuthorization: Basic %s\r\n"
            "MS-ASProtocolVersion: 14.1\r\nUser-Agent: Apple-iPhone/1402.100\r\n"
            "X-MS-PolicyKey: 0\r\n"
            "Content-Type: application/vnd.ms-sync.wbxml\r\nContent-Length: %d\r\n\r\n"
            % (PATH, cmd, user, dev, a.port, auth, len(body)))
    return head.encode() + body


async def read_response(r):
    head = await r.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    clen = 0
    for l in lines[1:]:
        k, _, v = l.partition(":")
        if k.strip().lower() == "content-length":
            clen = int(v.strip())
    body = await r.readexactly(clen) if clen else b""
    return status, body


async def exchange(r, w, a, cmd, dev, body, user=None):
    w.write(request(a, cmd, dev, body, user))
    return await read_response(r)


def devname(a, d):
    return "%s%03d" % (a.prefix, d)


async def prep_one(a, d, statuses):
    dev = devname(a, d)
    r, w = await asyncio.open_connection("127.0.0.1", a.port)
    try:
        st, body = await exchange(r, w, a, "FolderSync", dev, FOLDERSYNC_0, account(a, d))
        ev = parse(body)
        statuses["FolderSync %d/%s" % (st, first(ev, 7, 0x0C))] += 1
        if a.proxied:
            return None, 0
        inbox = None
        sid = None
        for p, t, text in ev:
            if p == 7 and t == 0x08:  # ServerId
                sid = text
            if p == 7 and t == 0x0A and text == "2":  # Type 2: the Inbox
                inbox = sid
        statuses["inbox %s" % inbox] += 1
        if inbox is None:
            statuses["no inbox"] += 1
            return None, 0
        st, body = await exchange(r, w, a, "Sync", dev, sync_body("0", inbox, False),
                                  account(a, d))
        ev = parse(body)
        key = first(ev, 0, 0x0B)
        statuses["Sync0 %d/%s" % (st, first(ev, 0, 0x0E))] += 1
        alerts = 0
        for _ in range(10):
            st, body = await exchange(r, w, a, "Sync", dev, sync_body(key, inbox, True),
                                      account(a, d))
            if not body:
                break
            ev = parse(body)
            key = first(ev, 0, 0x0B) or key
            adds = sum(1 for p, t, _ in ev if p == 0 and t == 0x0D)  # ServerId in an Add
            alerts += adds
            if adds == 0 and first(ev, 0, 0x14) is None:  # no MoreAvailable
                break
        statuses["GetChanges %d" % st] += 1
        return inbox, alerts
    finally:
        w.close()


async def prep(a):
    t0 = time.monotonic()
    statuses = collections.Counter()
    inbox, alerts = None, 0
    for s0 in range(0, a.devices, 20):
        res = await asyncio.gather(*(prep_one(a, d, statuses)
                                     for d in range(s0, min(a.devices, s0 + 20))))
        for ib, al in res:
            inbox = inbox or ib
            alerts += al
    # The first device's Ping must be held, not answered.
    r, w = await asyncio.open_connection("127.0.0.1", a.port)
    folder = a.inbox if a.proxied else inbox or "abq-inbox"
    w.write(request(a, "Ping", devname(a, 0), ping_body(folder, 60), account(a, 0)))
    try:
        st, body = await asyncio.wait_for(read_response(r), 1.5)
        statuses["probe Ping answered %d/%s" % (st, first(parse(body), 13, 0x07))] += 1
    except asyncio.TimeoutError:
        statuses["probe Ping held"] += 1
    w.transport.abort()
    print("prep devices=%d inbox=%s alerts=%d statuses=%s seconds=%.1f"
          % (a.devices, inbox, alerts, dict(statuses), time.monotonic() - t0), flush=True)


async def hold(a):
    total = a.devices * a.per
    first_i = a.offset
    end_i = total if a.count is None else min(total, a.offset + a.count)
    n = max(0, end_i - first_i)
    nofile = raise_nofile()
    if n + 64 > nofile:
        print("mailbox_clients: RLIMIT_NOFILE %d is too low for %d connections" % (nofile, n),
              file=sys.stderr)
        sys.exit(1)
    conns = []
    failed = 0
    statuses = collections.Counter()
    ready = asyncio.Event()
    early = []

    async def watch(r, dev):
        try:
            st, body = await read_response(r)
            ps = first(parse(body), 13, 0x07) if body else None
            line = "answer %s %d %s %.6f" % (dev, st, ps, time.time())
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            line = "answer %s closed - %.6f" % (dev, time.time())
        statuses[line.split()[2] + "/" + line.split()[3]] += 1
        if ready.is_set():
            print(line, flush=True)
        else:
            early.append(line)

    async def one(i):
        nonlocal failed
        src = "127.0.0.%d" % (a.addr_base + i % a.addrs)
        dev = devname(a, i % a.devices)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((src, 0))
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", a.port))
            r, w = await asyncio.open_connection(sock=sock)
        except OSError:
            sock.close()
            failed += 1
            return
        w.write(request(a, "Ping", dev, ping_body(a.inbox, a.heartbeat),
                        account(a, i % a.devices)))
        conns.append((w, asyncio.ensure_future(watch(r, dev))))

    for s0 in range(first_i, end_i, a.batch):
        await asyncio.gather(*(one(i) for i in range(s0, min(end_i, s0 + a.batch))))
        if a.pause > 0:
            await asyncio.sleep(a.pause)
    await asyncio.sleep(a.settle)
    answered = sum(statuses.values())
    print("clients opened=%d failed=%d answered=%d holding=%d statuses=%s"
          % (len(conns), failed, answered, len(conns) - answered, dict(statuses)), flush=True)
    for line in early[:5]:
        print("early " + line, flush=True)
    ready.set()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    for w, t in conns:
        t.cancel()
        w.transport.abort()
    await asyncio.sleep(0.5)
    print("clients closed", flush=True)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", default="alice")
    ap.add_argument("--password", default="secret")
    ap.add_argument("--prefix", default="BENCHQ")
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("mode", choices=["prep", "hold"])
    ap.add_argument("--per", type=int, default=100)
    ap.add_argument("--addrs", type=int, default=50)
    ap.add_argument("--addr-base", type=int, default=2)
    ap.add_argument("--offset", type=int, default=0)
    ap.add_argument("--count", type=int)
    ap.add_argument("--proxied", action="store_true")
    ap.add_argument("--accounts", type=int, default=0)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--pause", type=float, default=0)
    ap.add_argument("--settle", type=float, default=3)
    ap.add_argument("--heartbeat", type=int, default=480)
    ap.add_argument("--inbox", default="abq-inbox")
    a = ap.parse_args()
    if a.mode == "prep":
        await prep(a)
    else:
        await hold(a)


if __name__ == "__main__":
    asyncio.run(main())
