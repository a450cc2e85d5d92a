#!/usr/bin/env python3
"""A scriptable multi-socket pyzmq (libzmq) peer for the relay's end-to-end tests (relay/tests/e2e_*.rs).

One process holds any number of named libzmq sockets (clients, ingestors, a ROUTER-DEALER broker, a
market-data source, subscribers), all served by one poll loop that also reads commands on stdin.
Everything it observes is printed on stdout, one line per item, flushed at once:

    READY <name> <endpoint>          NEW done: the socket is bound (LAST_ENDPOINT) or connecting
    BIND_FAILED <name> <errno>       NEW ... bind failed (e.g. EADDRINUSE); the socket is closed again
    MSG <name> <frame> <frame> ...   a message received on socket <name>
    SENT <name> <frame> ...          a message was handed to libzmq
    SEND_FAILED <name> <errno>       a send failed for good (EFSM for a REQ that waits for its reply...)
    AUTO_SENT <name> <frame> ...     an AUTO response was handed to libzmq
    CLOSED <name>                    CLOSE done
    ECHO <text>                      ECHO done (every earlier command has been processed)
    BAD <text>                       a command was not understood
    EXIT <reason>                    about to exit (stdin closed, QUIT, timeout)

A frame is printed as ``<len>:<hex>`` when it is at most 64 bytes long and as
``<len>:crc32=<8 hex digits>`` (zlib's CRC-32) when longer (as tests/peers/echo.py does).

A message spec is frame specs separated by ``:``, each hex or ``r<N>`` (N random bytes) or ``z<N>``
(N zero bytes); the empty spec is one empty frame.

Commands (one per line, words separated by single spaces):

    NEW <name> <TYPE> bind|connect <endpoint> [key=value ...]
            keys: linger=<ms> (default 0), routing_id=<hex>, sndhwm=<n>, rcvhwm=<n>,
            reconnect_ivl=<ms>, sub=<hex> (SUB; repeatable; "sub=" is the empty topic)
    SEND <name> <spec>          send (queued and retried while libzmq says EAGAIN)
    SUB <name> [hex]            ZMQ_SUBSCRIBE (no hex: the empty topic)
    UNSUB <name> [hex]          ZMQ_UNSUBSCRIBE
    AUTO <in> <out> <status-hex> <spec>
            for every work message [topic, 01, request_id, ticker, params] received on <in>, send
            [02, request_id, status, spec frames...] on <out> (an automatic ingestor)
    PROXY <a> <b>               forward every message received on <a> to <b> and back (a broker)
    REPEAT <name> <ms> <spec> [<spec> ...]   send these messages every <ms> ms until STOP
    STOP <name>                 stop REPEAT
    CLOSE <name>                close the socket (with its linger)
    ECHO <text>                 print ECHO <text>
    QUIT                        exit now

The process exits when stdin closes, on QUIT, and after --timeout seconds in any case (a SIGALRM
backstop kills it a few seconds later even if libzmq blocks).
"""

import argparse
import collections
import errno
import os
import sys
import time

import zmq

from peerlib import StdinLines, frame_repr, install_backstop, out


def parse_spec(text):
    frames = []
    for part in text.split(":"):
        if part.startswith("r"):
            frames.append(os.urandom(int(part[1:])))
        elif part.startswith("z"):
            frames.append(bytes(int(part[1:])))
        else:
            frames.append(bytes.fromhex(part))
    return frames


def errno_name(e):
    return errno.errorcode.get(e.errno, str(e.errno))


class Sock:
    def __init__(self, name, sock, kind):
        self.name = name
        self.sock = sock
        self.kind = kind
        self.pending = collections.deque()  # (msg, label)
        self.auto = None  # (out_name, status, frames)
        self.proxy = None  # name of the other socket
        self.repeat = None  # (interval, [msgs], next_due)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--timeout", type=float, default=60.0, help="exit after this many seconds")
    args = p.parse_args()

    install_backstop(args.timeout)

    ctx = zmq.Context()
    socks = {}
    poller = zmq.Poller()
    stdin_fd = sys.stdin.fileno()
    poller.register(stdin_fd, zmq.POLLIN)
    deadline = time.monotonic() + args.timeout
    stdin_lines = StdinLines(stdin_fd)

    def flush(s):
        while s.pending:
            msg, label = s.pending[0]
            try:
                s.sock.send_multipart(msg, flags=zmq.NOBLOCK)
            except zmq.Again:
                return
            except zmq.ZMQError as e:
                s.pending.popleft()
                out("SEND_FAILED", s.name, errno_name(e))
                continue
            s.pending.popleft()
            out(label, s.name, *[frame_repr(f) for f in msg])

    def new(words):
        name, kind, how, endpoint = words[0], words[1].upper(), words[2], words[3]
        if name in socks:
            out("BAD", "socket exists:", name)
            return
        sock = ctx.socket(getattr(zmq, kind))
        sock.setsockopt(zmq.LINGER, 0)
        subs = []
        for kv in words[4:]:
            key, _, value = kv.partition("=")
            if key == "linger":
                sock.setsockopt(zmq.LINGER, int(value))
            elif key == "routing_id":
                sock.setsockopt(zmq.ROUTING_ID, bytes.fromhex(value))
            elif key == "sndhwm":
                sock.setsockopt(zmq.SNDHWM, int(value))
            elif key == "rcvhwm":
                sock.setsockopt(zmq.RCVHWM, int(value))
            elif key == "reconnect_ivl":
                sock.setsockopt(zmq.RECONNECT_IVL, int(value))
            elif key == "sub":
                subs.append(bytes.fromhex(value))
            else:
                out("BAD", "unknown option", kv)
        for t in subs:
            sock.setsockopt(zmq.SUBSCRIBE, t)
        if how == "bind":
            try:
                sock.bind(endpoint)
            except zmq.ZMQError as e:
                out("BIND_FAILED", name, errno_name(e))
                sock.close(linger=0)
                return
            out("READY", name, sock.getsockopt_string(zmq.LAST_ENDPOINT))
        else:
            sock.connect(endpoint)
            out("READY", name, endpoint)
        s = Sock(name, sock, kind)
        socks[name] = s
        if kind not in ("PUB", "PUSH"):
            poller.register(sock, zmq.POLLIN)

    def command(line):
        line = line.decode("utf-8", "replace").rstrip("\r")
        words = line.split(" ")
        verb = words[0]
        try:
            if verb == "NEW":
                new(words[1:])
            elif verb == "SEND":
                s = socks[words[1]]
                s.pending.append((parse_spec(words[2] if len(words) > 2 else ""), "SENT"))
                flush(s)
            elif verb in ("SUB", "UNSUB"):
                s = socks[words[1]]
                topic = bytes.fromhex(words[2]) if len(words) > 2 else b""
                s.sock.setsockopt(zmq.SUBSCRIBE if verb == "SUB" else zmq.UNSUBSCRIBE, topic)
            elif verb == "AUTO":
                s = socks[words[1]]
                s.auto = (words[2], bytes.fromhex(words[3]), parse_spec(words[4]) if len(words) > 4 else [])
            elif verb == "PROXY":
                socks[words[1]].proxy = words[2]
                socks[words[2]].proxy = words[1]
            elif verb == "REPEAT":
                s = socks[words[1]]
                s.repeat = (int(words[2]) / 1000.0, [parse_spec(w) for w in words[3:]], time.monotonic())
            elif verb == "STOP":
                socks[words[1]].repeat = None
            elif verb == "CLOSE":
                s = socks.pop(words[1])
                if s.kind not in ("PUB", "PUSH"):
                    poller.unregister(s.sock)
                s.sock.close()
                out("CLOSED", words[1])
            elif verb == "ECHO":
                out("ECHO", " ".join(words[1:]))
            elif verb == "QUIT":
                return False
            elif verb:
                out("BAD", repr(line))
        except (KeyError, IndexError, ValueError, zmq.ZMQError) as e:
            out("BAD", repr(line), repr(e).replace(" ", "_"))
        return True

    reason = None
    while reason is None:
        now = time.monotonic()
        wait = deadline - now
        for s in list(socks.values()):
            if s.repeat is not None:
                interval, msgs, due = s.repeat
                if now >= due:
                    for m in msgs:
                        try:
                            s.sock.send_multipart(m, flags=zmq.NOBLOCK)
                        except zmq.ZMQError:
                            pass
                    due = now + interval
                    s.repeat = (interval, msgs, due)
                wait = min(wait, due - now)
            flush(s)
            if s.pending:
                wait = min(wait, 0.005)
        if now >= deadline:
            reason = "timeout"
            break
        ready = dict(poller.poll(timeout=max(1, int(min(max(wait, 0), 0.5) * 1000))))
        for s in list(socks.values()):
            if s.sock not in ready:
                continue
            while s.name in socks:
                try:
                    msg = s.sock.recv_multipart(flags=zmq.NOBLOCK)
                except zmq.Again:
                    break
                except zmq.ZMQError as e:
                    out("RECV_FAILED", s.name, errno_name(e))
                    break
                out("MSG", s.name, *[frame_repr(f) for f in msg])
                if s.proxy is not None and s.proxy in socks:
                    other = socks[s.proxy]
                    other.pending.append((msg, "FWD"))
                    flush(other)
                if s.auto is not None and len(msg) >= 3 and s.auto[0] in socks:
                    target = socks[s.auto[0]]
                    target.pending.append(([b"\x02", msg[2], s.auto[1]] + list(s.auto[2]), "AUTO_SENT"))
                    flush(target)
                if s.kind in ("REQ", "REP"):
                    break
        if stdin_fd in ready:
            reason = stdin_lines.feed(command)
            if reason is not None:
                break

    out("EXIT", reason)
    for s in socks.values():
        s.sock.close(linger=0)
    ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
