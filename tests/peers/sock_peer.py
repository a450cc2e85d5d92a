#!/usr/bin/env python3
"""A generic pyzmq (libzmq) socket peer for the socket-level interop tests.

One libzmq socket of any type, bound or connected, with options from the
command line and a behaviour (``--mode``), driven by one poll loop that also
watches stdin and the socket monitor.  Everything it observes is printed on
stdout, one line per item, flushed at once:

    READY <endpoint>         the socket is bound (LAST_ENDPOINT) or connecting
    EVENT <NAME> <value>     a socket monitor event (HANDSHAKE_SUCCEEDED, ...)
    MSG <frame> <frame> ...  a message received by the application
    SENT <frame> <frame> ... a message was handed to libzmq (what was sent)
    SEND_FAILED <errno> ...  a send failed for good (EFSM, EHOSTUNREACH...)
    BAD <text>               a stdin command was not understood
    EXIT <reason>            the peer is about to exit (stdin, quit, timeout)

A frame is printed as ``<len>:<hex>`` when it is at most 64 bytes long and as
``<len>:crc32=<8 hex digits>`` (zlib's CRC-32) when longer, exactly like
tests/peers/echo.py, so a 16 MiB frame is one short line.

Messages (``--send`` and the ``SEND`` command) are frame specs separated by
``:``.  A spec is hex (``68656c6c6f``; the empty spec is an empty frame) or
``r<N>``: N random bytes (printed in the SENT line, so the test can check the
CRC of what it receives).  ``:68656c6c6f`` is [b"", b"hello"]; the empty
message spec is one empty frame.

Commands on stdin, one per line:

    SEND <spec>     send a message (queued until libzmq accepts it)
    QUIT            exit now

The peer exits when stdin closes (so a test that dies never leaves it
behind), on QUIT, and after ``--timeout`` seconds in any case (a SIGALRM
backstop kills it a few seconds later even if libzmq blocks).  LINGER is 0
unless ``--linger`` says otherwise.

Modes:

    sink  print every message received (the default)
    echo  print and send every message straight back: a REP answers its
          request, a ROUTER's reply is [id, ...rest] so it goes back to its
          sender, DEALER and PAIR send the same frames.  (Not for REQ, PUSH,
          PULL: they cannot echo, and behave as sink.)

Sends that libzmq cannot take now (EAGAIN: no peer yet, HWM reached) stay
queued and are retried; with ``--retry-unroutable`` a ROUTER_MANDATORY
EHOSTUNREACH is retried too (the peer named may not have connected yet).
``--seq N`` queues N one-frame messages at start-up, message i (from 0) being
``seq-<i>`` followed by i % 300 dots, so their sizes cross the 255/256-byte
boundary between short and long frames.
"""

import argparse
import collections
import errno
import sys
import time

import zmq
from zmq.utils.monitor import recv_monitor_message

from peerlib import (
    EVENT_NAMES,
    SEND_ONLY,
    TYPES,
    StdinLines,
    apply_socket_options,
    frame_repr,
    install_backstop,
    out,
    parse_msg,
)

ECHOERS = {"REP", "ROUTER", "DEALER", "PAIR"}


def errno_name(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--type", required=True, choices=TYPES)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--bind", metavar="ENDPOINT")
    where.add_argument("--connect", metavar="ENDPOINT")
    p.add_argument("--mode", choices=["sink", "echo"], default="sink")
    p.add_argument("--timeout", type=float, default=30.0, help="exit after this many seconds")
    p.add_argument("--send", action="append", default=[], metavar="SPEC", help="send at start-up")
    p.add_argument("--seq", type=int, default=0, metavar="N", help="send N messages seq-<i>... at start-up")
    p.add_argument("--routing-id", metavar="HEX", help="ZMQ_ROUTING_ID")
    p.add_argument("--connect-routing-id", metavar="HEX", help="ZMQ_CONNECT_ROUTING_ID (ROUTER)")
    p.add_argument("--router-mandatory", action="store_true", help="ZMQ_ROUTER_MANDATORY")
    p.add_argument("--retry-unroutable", action="store_true", help="retry sends failing EHOSTUNREACH")
    p.add_argument("--heartbeat-ivl", type=int, metavar="MS", help="ZMQ_HEARTBEAT_IVL")
    p.add_argument("--heartbeat-ttl", type=int, metavar="MS", help="ZMQ_HEARTBEAT_TTL")
    p.add_argument("--heartbeat-timeout", type=int, metavar="MS", help="ZMQ_HEARTBEAT_TIMEOUT")
    p.add_argument("--reconnect-ivl", type=int, metavar="MS", help="ZMQ_RECONNECT_IVL")
    p.add_argument("--linger", type=int, default=0, metavar="MS", help="ZMQ_LINGER (default 0)")
    p.add_argument("--maxmsgsize", type=int, metavar="BYTES", help="ZMQ_MAXMSGSIZE")
    p.add_argument("--no-monitor", action="store_true", help="do not print monitor events")
    p.add_argument("--subscribe", action="append", default=[], metavar="HEX", help="ZMQ_SUBSCRIBE (SUB)")
    args = p.parse_args()

    install_backstop(args.timeout)

    kind = args.type
    ctx = zmq.Context()
    s = ctx.socket(getattr(zmq, kind))
    apply_socket_options(s, args)
    for topic in args.subscribe:
        s.setsockopt(zmq.SUBSCRIBE, bytes.fromhex(topic))
    mon = None if args.no_monitor else s.get_monitor_socket()

    if args.bind is not None:
        s.bind(args.bind)
        out("READY", s.getsockopt_string(zmq.LAST_ENDPOINT))
    else:
        s.connect(args.connect)
        out("READY", args.connect)

    pending = collections.deque(parse_msg(m) for m in args.send)
    pending.extend([f"seq-{i}".encode() + b"." * (i % 300)] for i in range(args.seq))
    echo = args.mode == "echo" and kind in ECHOERS
    deadline = time.monotonic() + args.timeout
    stdin_fd = sys.stdin.fileno()
    stdin_lines = StdinLines(stdin_fd)  # chunked: a 32 MiB hex line must not be quadratic

    poller = zmq.Poller()
    if mon is not None:
        poller.register(mon, zmq.POLLIN)
    if kind not in SEND_ONLY:
        poller.register(s, zmq.POLLIN)
    poller.register(stdin_fd, zmq.POLLIN)

    def flush_pending():
        while pending:
            msg = pending[0]
            try:
                s.send_multipart(msg, flags=zmq.NOBLOCK)
            except zmq.Again:
                return
            except zmq.ZMQError as e:
                if e.errno == errno.EHOSTUNREACH and args.retry_unroutable:
                    return
                pending.popleft()
                out("SEND_FAILED", errno_name(e), e.strerror.replace(" ", "_"))
                continue
            pending.popleft()
            out("SENT", *[frame_repr(f) for f in msg])

    def command(line):
        line = line.decode("utf-8", "replace").rstrip("\r")
        verb, _, rest = line.partition(" ")
        if verb == "SEND":
            try:
                pending.append(parse_msg(rest))
            except ValueError as e:
                out("BAD", repr(line), e)
        elif verb == "QUIT":
            return False
        elif verb:
            out("BAD", repr(line))
        return True

    reason = None
    while reason is None:
        flush_pending()
        now = time.monotonic()
        if now >= deadline:
            reason = "timeout"
            break
        # Poll briefly while sends wait for libzmq (no POLLOUT for ROUTER retries).
        wait = 0.01 if pending else deadline - now
        ready = dict(poller.poll(timeout=max(1, int(min(wait, 0.5) * 1000))))
        if mon is not None and mon in ready:
            while True:
                try:
                    ev = recv_monitor_message(mon, flags=zmq.NOBLOCK)
                except zmq.Again:
                    break
                out("EVENT", EVENT_NAMES.get(ev["event"], str(ev["event"])), ev["value"])
        if s in ready:
            while True:
                try:
                    msg = s.recv_multipart(flags=zmq.NOBLOCK)
                except zmq.Again:
                    break
                out("MSG", *[frame_repr(f) for f in msg])
                if echo:
                    pending.append(msg)
                    flush_pending()
                if kind in ("REP", "REQ"):
                    # REP must answer before the next request can be read.
                    break
        if stdin_fd in ready:
            reason = stdin_lines.feed(command)
            if reason is not None:
                break

    out("EXIT", reason)
    if mon is not None:
        s.disable_monitor()
        mon.close(linger=0)
    s.close()
    ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
