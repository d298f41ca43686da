#!/usr/bin/env python3
"""Phones holding Ping long polls on abqd, for bench/proxy.sh.

    hold_clients.py --port PORT --n 10000 [--addrs 40] [--devices 50]
    hold_clients.py --port PORT --warm [--devices 50]

Opens N connections to abqd at 127.0.0.1:PORT, each bound before connect to one
of the source addresses 127.0.0.2 .. 127.0.0.(1+addrs) (round robin, so abqd's
per-address connection cap is not what limits the run), and sends on each one
Ping POST with valid Basic credentials; the DeviceIds cycle over --devices ids
(BENCHP000 ..), so only that many device records exist. Connections are opened
--batch at a time (the listen backlog is finite).

When all are sent it waits --settle seconds and prints one line:
    clients opened=N failed=F answered=A holding=H statuses={...}
(answered: abqd sent a response although the upstream holds them all, e.g. a 503
when it has no upstream connection slot left). It then holds until SIGTERM or
SIGINT, closes every connection and prints "clients closed".

--warm sends one FolderSync per DeviceId (so the device records and the auth
cache exist before the memory is measured) and prints the statuses.
Python 3 standard library only.
"""

import argparse
import asyncio
import base64
import collections
import resource
import signal
import sys

PATH = "/Microsoft-Server-ActiveSync"
FOLDERSYNC_0 = bytes.fromhex("03 01 6a 00 00 07 56 52 03 30 00 01 01")
# Ping (code page 13) with HeartbeatInterval 480.
PING = bytes.fromhex("03 01 6a 00 00 0d 45 48 03 34 38 30 00 01 01")


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def request(a, cmd, dev, body):
    auth = base64.b64encode(("%s:%s" % (a.user, a.password)).encode()).decode()
    head = ("POST %s?Cmd=%s&User=%s&DeviceId=%s&DeviceType=iPhone HTTP/1.1\r\n"
            "Host: 127.0.0.1:%d\r\nAuthorization: Basic %s\r\n"
            "MS-ASProtocolVersion: 14.1\r\nUser-Agent: Apple-iPhone/1402.100\r\n"
            "Content-Type: application/vnd.ms-sync.wbxml\r\nContent-Length: %d\r\n\r\n"
            % (PATH, cmd, a.user, dev, a.port, auth, len(body)))
    return head.encode() + body


async def warm(a):
    statuses = collections.Counter()
    for d in range(a.devices):
        r, w = await asyncio.open_connection("127.0.0.1", a.port)
        w.write(request(a, "FolderSync", "BENCHP%03d" % d, FOLDERSYNC_0))
        line = await r.readline()
        statuses[line.split()[1].decode() if line else "eof"] += 1
        w.close()
    print("warm statuses=%s" % dict(statuses), flush=True)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--addrs", type=int, default=40)
    ap.add_argument("--devices", type=int, default=50)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--settle", type=float, default=3)
    ap.add_argument("--user", default="alice")
    ap.add_argument("--password", default="secret")
    ap.add_argument("--warm", action="store_true")
    a = ap.parse_args()
    nofile = raise_nofile()
    if a.warm:
        await warm(a)
        return
    if a.n + 64 > nofile:
        print("hold_clients: RLIMIT_NOFILE %d is too low for %d connections" % (nofile, a.n),
              file=sys.stderr)
        sys.exit(1)

    conns = []
    failed = 0
    statuses = collections.Counter()

    async def watch(reader):
        # Anything read means abqd answered (or closed) a request that should be held.
        try:
            data = await reader.read(4096)
        except ConnectionError:
            data = b""
        statuses[data.split(b" ")[1].decode() if data[:5] == b"HTTP/" else "closed"] += 1

    async def one(i):
        nonlocal failed
        src = "127.0.0.%d" % (2 + i % a.addrs)
        try:
            r, w = await asyncio.open_connection("127.0.0.1", a.port, local_addr=(src, 0))
        except OSError:
            failed += 1
            return
        w.write(request(a, "Ping", "BENCHP%03d" % (i % a.devices), PING))
        conns.append((w, asyncio.ensure_future(watch(r))))

    for s in range(0, a.n, a.batch):
        await asyncio.gather(*(one(i) for i in range(s, min(a.n, s + a.batch))))
    await asyncio.sleep(a.settle)
    answered = sum(statuses.values())
    print("clients opened=%d failed=%d answered=%d holding=%d statuses=%s"
          % (len(conns), failed, answered, len(conns) - answered, dict(statuses)), flush=True)

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


if __name__ == "__main__":
    asyncio.run(main())
