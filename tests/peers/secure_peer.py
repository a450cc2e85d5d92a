#!/usr/bin/env python3
"""A pyzmq (libzmq) socket peer with CURVE (RFC 26) or PLAIN (RFC 24) security and, optionally, a
pyzmq ``zmq.auth`` authenticator (ZAP handler), for tests/tests/security_interop.rs.

It behaves like tests/peers/sock_peer.py (same stdout lines, same stdin commands, same ``sink`` and
``echo`` modes, same frame notation, see that script's docstring) and adds:

Security of the socket (at most one mechanism; keys are Z85, 40 characters: pass them as
``--curve-secret=KEY``, since a Z85 key may start with ``-``):

    --curve-server --curve-secret Z85          CURVE server with this long-term secret key
    --curve-serverkey Z85 --curve-secret Z85   CURVE client (our public key is derived, or
                                               --curve-public Z85)
    --plain-server                             PLAIN server
    --plain-username U --plain-password P      PLAIN client
    --zap-domain D                             ZMQ_ZAP_DOMAIN

An authenticator, started before the socket binds or connects (``--auth``):

    --auth thread     zmq.auth.thread.ThreadAuthenticator
    --auth asyncio    zmq.auth.asyncio.AsyncioAuthenticator; the whole peer then runs in an asyncio
                      event loop (zmq.asyncio.Poller over the socket, its monitor and stdin)
    --auth-allow-key Z85   allow this CURVE client key (repeatable; written as a certificate into a
                           temporary directory handed to configure_curve)
    --auth-cert-dir DIR    allow the client certificates (``*.key``) in DIR
    --auth-curve-any       configure_curve(location=CURVE_ALLOW_ANY)
    --auth-plain USER=PASS configure_plain with this user (repeatable)
    --auth-allow-ip IP / --auth-deny-ip IP   address lists (repeatable)

An authenticator configured with no CURVE keys (and not ``--auth-curve-any``) refuses every CURVE
client; one with no PLAIN users refuses every PLAIN client (pyzmq's rules).

With ``--print-props`` every ``MSG`` line is followed by ``PROPS User-Id=<id> Socket-Type=<type>``:
the message properties libzmq attaches (the User-Id the ZAP handler returned, the peer's socket type
from its READY/INITIATE metadata); a missing property prints as ``-``.

Several ``--connect`` endpoints may be given; ``READY`` then prints the first.
"""

import argparse
import collections
import errno
import os
import struct
import sys
import time

import zmq

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


def recv_monitor_event(mon):
    """The next monitor event as (event id, value), without blocking (zmq.Again if none). Parsed
    here rather than with zmq.utils.monitor, which imports asyncio: start-up time counts when a test
    spawns a hundred peers."""
    frames = mon.recv_multipart(flags=zmq.NOBLOCK)
    event, value = struct.unpack("=hi", frames[0][:6])
    return event, value


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--type", required=True, choices=TYPES)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--bind", metavar="ENDPOINT")
    where.add_argument("--connect", metavar="ENDPOINT", action="append")
    p.add_argument("--mode", choices=["sink", "echo"], default="sink")
    p.add_argument("--timeout", type=float, default=30.0, help="exit after this many seconds")
    p.add_argument("--send", action="append", default=[], metavar="SPEC", help="send at start-up")
    p.add_argument("--routing-id", metavar="HEX", help="ZMQ_ROUTING_ID")
    p.add_argument("--heartbeat-ivl", type=int, metavar="MS", help="ZMQ_HEARTBEAT_IVL")
    p.add_argument("--heartbeat-ttl", type=int, metavar="MS", help="ZMQ_HEARTBEAT_TTL")
    p.add_argument("--heartbeat-timeout", type=int, metavar="MS", help="ZMQ_HEARTBEAT_TIMEOUT")
    p.add_argument("--reconnect-ivl", type=int, metavar="MS", help="ZMQ_RECONNECT_IVL")
    p.add_argument("--linger", type=int, default=0, metavar="MS", help="ZMQ_LINGER (default 0)")
    p.add_argument("--no-monitor", action="store_true", help="do not print monitor events")
    p.add_argument("--subscribe", action="append", default=[], metavar="HEX", help="ZMQ_SUBSCRIBE (SUB)")
    p.add_argument("--print-props", action="store_true", help="print PROPS after every MSG")
    # Security.
    p.add_argument("--curve-server", action="store_true", help="ZMQ_CURVE_SERVER")
    p.add_argument("--curve-secret", metavar="Z85", help="ZMQ_CURVE_SECRETKEY")
    p.add_argument("--curve-public", metavar="Z85", help="ZMQ_CURVE_PUBLICKEY (default: derived)")
    p.add_argument("--curve-serverkey", metavar="Z85", help="ZMQ_CURVE_SERVERKEY (makes a client)")
    p.add_argument("--plain-server", action="store_true", help="ZMQ_PLAIN_SERVER")
    p.add_argument("--plain-username", metavar="USER", help="ZMQ_PLAIN_USERNAME")
    p.add_argument("--plain-password", metavar="PASS", help="ZMQ_PLAIN_PASSWORD")
    p.add_argument("--zap-domain", metavar="DOMAIN", help="ZMQ_ZAP_DOMAIN")
    # Authenticator.
    p.add_argument("--auth", choices=["thread", "asyncio"], help="run a zmq.auth authenticator")
    p.add_argument("--auth-allow-key", action="append", default=[], metavar="Z85")
    p.add_argument("--auth-cert-dir", metavar="DIR")
    p.add_argument("--auth-curve-any", action="store_true")
    p.add_argument("--auth-plain", action="append", default=[], metavar="USER=PASS")
    p.add_argument("--auth-allow-ip", action="append", default=[], metavar="IP")
    p.add_argument("--auth-deny-ip", action="append", default=[], metavar="IP")
    return p.parse_args()


def configure_security(s, args):
    """Sets the mechanism options on socket ``s``."""
    if args.zap_domain is not None:
        s.setsockopt(zmq.ZAP_DOMAIN, args.zap_domain.encode())
    if args.curve_server or args.curve_serverkey is not None:
        if args.curve_secret is None:
            raise SystemExit("CURVE needs --curve-secret")
        secret = args.curve_secret.encode()
        public = args.curve_public.encode() if args.curve_public else zmq.curve_public(secret)
        s.setsockopt(zmq.CURVE_SECRETKEY, secret)
        s.setsockopt(zmq.CURVE_PUBLICKEY, public)
        if args.curve_server:
            s.setsockopt(zmq.CURVE_SERVER, 1)
        else:
            s.setsockopt(zmq.CURVE_SERVERKEY, args.curve_serverkey.encode())
    if args.plain_server:
        s.setsockopt(zmq.PLAIN_SERVER, 1)
    if args.plain_username is not None:
        s.setsockopt(zmq.PLAIN_USERNAME, args.plain_username.encode())
    if args.plain_password is not None:
        s.setsockopt(zmq.PLAIN_PASSWORD, args.plain_password.encode())


def start_authenticator(ctx, args, scratch):
    """Starts and configures the authenticator ``--auth`` names (None without ``--auth``). Must run
    inside the event loop for the asyncio flavour. ``scratch()`` makes a temporary directory."""
    if args.auth is None:
        return None
    if args.auth == "thread":
        from zmq.auth.thread import ThreadAuthenticator

        auth = ThreadAuthenticator(ctx)
    else:
        from zmq.auth.asyncio import AsyncioAuthenticator

        auth = AsyncioAuthenticator(ctx)
    auth.start()
    if args.auth_allow_ip:
        auth.allow(*args.auth_allow_ip)
    if args.auth_deny_ip:
        auth.deny(*args.auth_deny_ip)
    if args.auth_plain:
        passwords = dict(up.split("=", 1) for up in args.auth_plain)
        auth.configure_plain(domain="*", passwords=passwords)
    if args.auth_curve_any:
        auth.configure_curve(domain="*", location=zmq.auth.CURVE_ALLOW_ANY)
    elif args.auth_cert_dir is not None:
        auth.configure_curve(domain="*", location=args.auth_cert_dir)
    elif args.auth_allow_key:
        # pyzmq reads allowed keys from certificate files (``*.key``) in a directory.
        certs = os.path.join(scratch(), "allowed")
        os.mkdir(certs)
        for i, key in enumerate(args.auth_allow_key):
            with open(os.path.join(certs, f"client{i}.key"), "w") as f:
                f.write(f'#   test certificate\nmetadata\ncurve\n    public-key = "{key}"\n')
        auth.configure_curve(domain="*", location=certs)
    return auth


def msg_props(frames):
    """``PROPS`` line words for the message whose frames (zmq.Frame) are ``frames``."""
    words = []
    for name in ("User-Id", "Socket-Type"):
        try:
            value = frames[0].get(name)
        except zmq.ZMQError:
            value = None
        words.append(f"{name}={value if value else '-'}")
    return words


class SecurePeer:
    """The socket, its monitor and stdin, driven by ``step`` after each poll."""

    def __init__(self, ctx, args):
        self.args = args
        self.kind = args.type
        s = ctx.socket(getattr(zmq, self.kind))
        self.s = s
        apply_socket_options(s, args)
        configure_security(s, args)
        for topic in args.subscribe:
            s.setsockopt(zmq.SUBSCRIBE, bytes.fromhex(topic))
        self.mon = None if args.no_monitor else s.get_monitor_socket()
        self.pending = collections.deque(parse_msg(m) for m in args.send)
        self.echo = args.mode == "echo" and self.kind in ECHOERS
        self.deadline = time.monotonic() + args.timeout
        self.stdin_fd = sys.stdin.fileno()
        self.stdin_lines = StdinLines(self.stdin_fd)

    def start(self):
        if self.args.bind is not None:
            self.s.bind(self.args.bind)
            out("READY", self.s.getsockopt_string(zmq.LAST_ENDPOINT))
        else:
            for ep in self.args.connect:
                self.s.connect(ep)
            out("READY", self.args.connect[0])

    def register(self, poller):
        if self.mon is not None:
            poller.register(self.mon, zmq.POLLIN)
        if self.kind not in SEND_ONLY:
            poller.register(self.s, zmq.POLLIN)
        poller.register(self.stdin_fd, zmq.POLLIN)

    def wait_ms(self):
        """How long the next poll may wait (milliseconds), or None once the timeout passed."""
        self.flush_pending()
        now = time.monotonic()
        if now >= self.deadline:
            return None
        wait = 0.01 if self.pending else self.deadline - now
        return max(1, int(min(wait, 0.5) * 1000))

    def flush_pending(self):
        while self.pending:
            msg = self.pending[0]
            try:
                self.s.send_multipart(msg, flags=zmq.NOBLOCK)
            except zmq.Again:
                return
            except zmq.ZMQError as e:
                self.pending.popleft()
                out("SEND_FAILED", errno_name(e), e.strerror.replace(" ", "_"))
                continue
            self.pending.popleft()
            out("SENT", *[frame_repr(bytes(f)) for f in msg])

    def command(self, line):
        line = line.decode("utf-8", "replace").rstrip("\r")
        verb, _, rest = line.partition(" ")
        if verb == "SEND":
            try:
                self.pending.append(parse_msg(rest))
            except ValueError as e:
                out("BAD", repr(line), e)
        elif verb == "QUIT":
            return False
        elif verb:
            out("BAD", repr(line))
        return True

    def step(self, ready):
        """Handles what the poll reported; returns the exit reason, or None to go on."""
        if self.mon is not None and self.mon in ready:
            while True:
                try:
                    event, value = recv_monitor_event(self.mon)
                except zmq.Again:
                    break
                out("EVENT", EVENT_NAMES.get(event, str(event)), value)
        if self.s in ready:
            while True:
                try:
                    frames = self.s.recv_multipart(flags=zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                msg = [f.bytes for f in frames]
                out("MSG", *[frame_repr(f) for f in msg])
                if self.args.print_props:
                    out("PROPS", *msg_props(frames))
                if self.echo:
                    self.pending.append(msg)
                    self.flush_pending()
                if self.kind in ("REP", "REQ"):
                    # REP must answer before the next request can be read.
                    break
        if self.stdin_fd in ready:
            return self.stdin_lines.feed(self.command)
        return None

    def close(self):
        if self.mon is not None:
            self.s.disable_monitor()
            self.mon.close(linger=0)
        self.s.close()


def run_sync(ctx, args, scratch):
    auth = start_authenticator(ctx, args, scratch)
    peer = SecurePeer(ctx, args)
    peer.start()
    poller = zmq.Poller()
    peer.register(poller)
    reason = None
    while reason is None:
        wait = peer.wait_ms()
        if wait is None:
            reason = "timeout"
            break
        reason = peer.step(dict(poller.poll(timeout=wait)))
    out("EXIT", reason)
    peer.close()
    if auth is not None:
        auth.stop()


async def run_async(ctx, args, scratch):
    import zmq.asyncio

    auth = start_authenticator(ctx, args, scratch)
    peer = SecurePeer(ctx, args)
    peer.start()
    poller = zmq.asyncio.Poller()
    peer.register(poller)
    reason = None
    while reason is None:
        wait = peer.wait_ms()
        if wait is None:
            reason = "timeout"
            break
        reason = peer.step(dict(await poller.poll(timeout=wait)))
    out("EXIT", reason)
    peer.close()
    if auth is not None:
        auth.stop()


def main():
    args = parse_args()
    install_backstop(args.timeout)
    ctx = zmq.Context()
    made = []

    def scratch():
        import tempfile

        made.append(tempfile.mkdtemp(prefix="secure-peer-"))
        return made[-1]

    try:
        if args.auth == "asyncio":
            import asyncio

            asyncio.run(run_async(ctx, args, scratch))
        else:
            run_sync(ctx, args, scratch)
    finally:
        if made:
            import shutil

            for d in made:
                shutil.rmtree(d, ignore_errors=True)
    ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
