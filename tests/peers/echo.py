#!/usr/bin/env python3
"""A pyzmq (libzmq) peer for the interop tests in tests/tests/.

One libzmq socket of any type, bound or connected, driven by a single poll
loop.  Everything it observes is printed on stdout, one line per item, flushed
at once, so the Rust test reading it (tests/src/lib.rs, ``Peer``) can wait for
exactly the line it needs:

    READY <endpoint>         the socket is bound (LAST_ENDPOINT) or connecting
    EVENT <NAME> <value>     a socket monitor event (HANDSHAKE_SUCCEEDED, ...)
    MSG <frame> <frame> ...  a message received by the application
    SENT <n>                 the --send messages (n of them) were sent
    EXIT <reason>            the peer is about to exit ("timeout")

A frame is printed as ``<len>:<hex>`` when it is at most 64 bytes long, and as
``<len>:crc32=<8 hex digits>`` (zlib's CRC-32 of the body) when longer, so a
16 MiB frame is one short line.  An empty frame is ``0:``.

Messages on the command line (``--send``, ``--publish``) are frames in hex,
separated by ``:``; ``:68656c6c6f`` is the two frames [b"", b"hello"] and the
empty string is one empty frame.

Behaviour by type: every readable socket prints what it receives; with
``--echo`` it also sends each message straight back (a ROUTER's reply is then
[id, ...rest], so it goes back to the sender; a REP answers its request).
``--send`` messages go out once the first handshake succeeded (so a bound
DEALER never blocks for lack of a peer); ``--publish`` messages go out in a
loop every ``--interval`` ms (a PUB/XPUB drops them until someone subscribes).

The peer always exits by itself after ``--timeout`` seconds (a SIGALRM backstop
kills it a few seconds later even if libzmq blocks), and LINGER is 0, so
nothing ever hangs a test.
"""

import argparse
import sys
import time

import zmq
from zmq.utils.monitor import recv_monitor_message

from peerlib import EVENT_NAMES, SEND_ONLY, TYPES, frame_repr, install_backstop, out, parse_msg


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--type", required=True, choices=TYPES)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--bind", metavar="ENDPOINT")
    where.add_argument("--connect", metavar="ENDPOINT")
    p.add_argument("--timeout", type=float, default=10.0, help="exit after this many seconds")
    p.add_argument("--echo", action="store_true", help="send every received message back")
    p.add_argument("--send", action="append", default=[], metavar="HEX:HEX", help="send once connected")
    p.add_argument("--publish", action="append", default=[], metavar="HEX:HEX", help="send in a loop")
    p.add_argument("--interval", type=float, default=20.0, help="--publish period, ms")
    p.add_argument("--subscribe", action="append", default=[], metavar="HEX", help="SUB topics")
    p.add_argument("--routing-id", help="ZMQ_ROUTING_ID (text)")
    p.add_argument("--heartbeat-ivl", type=int, help="ZMQ_HEARTBEAT_IVL, ms")
    p.add_argument("--heartbeat-timeout", type=int, help="ZMQ_HEARTBEAT_TIMEOUT, ms")
    p.add_argument("--heartbeat-ttl", type=int, help="ZMQ_HEARTBEAT_TTL, ms")
    p.add_argument("--xpub-verbose", action="store_true", help="ZMQ_XPUB_VERBOSE")
    args = p.parse_args()

    install_backstop(args.timeout)

    ctx = zmq.Context()
    kind = args.type
    s = ctx.socket(getattr(zmq, kind))
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.SNDTIMEO, 2000)
    if args.routing_id is not None:
        s.setsockopt(zmq.ROUTING_ID, args.routing_id.encode())
    if args.heartbeat_ivl is not None:
        s.setsockopt(zmq.HEARTBEAT_IVL, args.heartbeat_ivl)
    if args.heartbeat_timeout is not None:
        s.setsockopt(zmq.HEARTBEAT_TIMEOUT, args.heartbeat_timeout)
    if args.heartbeat_ttl is not None:
        s.setsockopt(zmq.HEARTBEAT_TTL, args.heartbeat_ttl)
    if args.xpub_verbose:
        s.setsockopt(zmq.XPUB_VERBOSE, 1)
    for topic in args.subscribe:
        s.setsockopt(zmq.SUBSCRIBE, bytes.fromhex(topic))
    mon = s.get_monitor_socket()

    if args.bind is not None:
        s.bind(args.bind)
        out("READY", s.getsockopt_string(zmq.LAST_ENDPOINT))
    else:
        s.connect(args.connect)
        out("READY", args.connect)

    to_send = [parse_msg(m) for m in args.send]
    to_publish = [parse_msg(m) for m in args.publish]
    handshaken = False
    next_publish = time.monotonic()
    published = 0
    deadline = time.monotonic() + args.timeout

    poller = zmq.Poller()
    poller.register(mon, zmq.POLLIN)
    if kind not in SEND_ONLY:
        poller.register(s, zmq.POLLIN)

    while True:
        now = time.monotonic()
        if now >= deadline:
            out("EXIT timeout")
            break
        if handshaken and to_send:
            for m in to_send:
                s.send_multipart(m)
            out("SENT", len(to_send))
            to_send = []
        if to_publish and now >= next_publish:
            s.send_multipart(to_publish[published % len(to_publish)])
            published += 1
            next_publish = now + args.interval / 1000.0
        wait = deadline - now
        if to_publish:
            wait = min(wait, max(0.0, next_publish - now))
        ready = dict(poller.poll(timeout=max(1, int(wait * 1000))))
        if mon in ready:
            ev = recv_monitor_message(mon)
            name = EVENT_NAMES.get(ev["event"], str(ev["event"]))
            value = ev["value"]
            out("EVENT", name, value)
            if ev["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                handshaken = True
        if s in ready:
            msg = s.recv_multipart()
            out("MSG", *[frame_repr(f) for f in msg])
            if args.echo:
                s.send_multipart(msg)

    s.disable_monitor()
    mon.close(linger=0)
    s.close(linger=0)
    ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
