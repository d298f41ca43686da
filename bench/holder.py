#!/usr/bin/env python3
"""A holding ActiveSync upstream for bench/proxy.sh (the held long-poll benchmark).

    holder.py PORT [--host 127.0.0.1] [--hold SECONDS] [--reuse-port]

Speaks just enough HTTP/1.1 (keep-alive, Content-Length bodies):
  - OPTIONS: 200 at once (so abqd's `[auth] method = upstream` probe succeeds);
  - POST with Cmd=Ping in the query: held, never answered, until the client
    goes away or --hold seconds (default 3600) pass, then 200 with an empty body;
  - anything else: 200 with a small fixed body.
Prints "holder listening on HOST:PORT" once it accepts, and on SIGUSR1 the
number of requests it is holding. --reuse-port binds with SO_REUSEPORT, so that
several holders share one port (the kernel spreads the connections over them):
bench/held.sh runs one per 10,000 held Pings, each under its own descriptor
limit. Python 3 standard library only.
"""

import argparse
import asyncio
import resource
import signal
import sys

BODY = b"\x03\x01\x6a\x00\x00\x07\x56\x4c\x03\x31\x00\x01\x01"  # FolderSync Status 1
held = 0


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def answer(status, body, close=False):
    head = ("HTTP/1.1 %d OK\r\nContent-Type: application/vnd.ms-sync.wbxml\r\n"
            "MS-Server-ActiveSync: 14.1\r\nContent-Length: %d\r\n%s\r\n"
            % (status, len(body), "Connection: close\r\n" if close else ""))
    return head.encode() + body


async def serve(reader, writer, hold):
    global held
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target = lines[0].split(" ")[:2]
            clen = 0
            for l in lines[1:]:
                k, _, v = l.partition(":")
                if k.strip().lower() == "content-length":
                    clen = int(v.strip())
            if clen:
                await reader.readexactly(clen)
            if method == "POST" and "Cmd=Ping" in target:
                held += 1
                try:
                    # Returns at EOF (the client went away) or after the hold.
                    await asyncio.wait_for(reader.read(1), hold)
                except asyncio.TimeoutError:
                    writer.write(answer(200, b""))
                    await writer.drain()
                    continue
                finally:
                    held -= 1
                return
            writer.write(answer(200, b"" if method == "OPTIONS" else BODY))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--hold", type=float, default=3600)
    ap.add_argument("--reuse-port", action="store_true")
    a = ap.parse_args()
    raise_nofile()
    srv = await asyncio.start_server(lambda r, w: serve(r, w, a.hold), a.host, a.port,
                                     backlog=4096, reuse_port=a.reuse_port or None)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, lambda: print("holder holding %d" % held,
                                                          flush=True))
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("holder listening on %s:%d" % (a.host, a.port), flush=True)
    async with srv:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
