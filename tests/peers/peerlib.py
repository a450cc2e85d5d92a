"""What the pyzmq peer scripts (echo.py, sock_peer.py) share: the socket type names, monitor event
names, the stdout line format and the frame notation of tests/src/lib.rs.

A frame is printed as ``<len>:<hex>`` when it is at most 64 bytes long and as
``<len>:crc32=<8 hex digits>`` (zlib's CRC-32) when longer. A message spec is frame specs separated
by ``:``, each hex or ``r<N>`` (N random bytes).
"""

import os
import signal
import sys
import zlib

import zmq

TYPES = ["REQ", "REP", "DEALER", "ROUTER", "PUB", "SUB", "XPUB", "XSUB", "PUSH", "PULL", "PAIR"]
SEND_ONLY = {"PUB", "PUSH"}

EVENT_NAMES = {}
for _name in dir(zmq):
    if _name.startswith("EVENT_") and _name not in ("EVENT_ALL", "EVENT_ALL_V1", "EVENT_ALL_V2"):
        _value = getattr(zmq, _name)
        if isinstance(_value, int):
            EVENT_NAMES.setdefault(int(_value), _name[len("EVENT_"):])


def out(*parts):
    """One stdout line, flushed at once."""
    sys.stdout.write(" ".join(str(p) for p in parts) + "\n")
    sys.stdout.flush()


def frame_repr(frame):
    if len(frame) <= 64:
        return f"{len(frame)}:{frame.hex()}"
    return f"{len(frame)}:crc32={zlib.crc32(frame) & 0xFFFFFFFF:08x}"


def parse_msg(text):
    frames = []
    for part in text.split(":"):
        if part.startswith("r"):
            frames.append(os.urandom(int(part[1:])))
        else:
            frames.append(bytes.fromhex(part))
    return frames


def install_backstop(timeout):
    """Makes the process exit (status 3, after printing ``EXIT alarm``) ``timeout`` + 5 seconds from
    now, whatever it is doing: a peer must never outlive a test, even if libzmq blocks."""

    def backstop(signum, frame_):
        out("EXIT alarm")
        os._exit(3)

    signal.signal(signal.SIGALRM, backstop)
    signal.alarm(int(timeout) + 5)


class StdinLines:
    """Splits what arrives on stdin (read without blocking once select says it is ready) into lines."""

    def __init__(self, fd):
        self.fd = fd
        self.partial = []

    def feed(self, command):
        """Reads what stdin has and calls ``command(line)`` for each complete line, in order. Returns
        ``"stdin"`` at end of input, ``"quit"`` once ``command`` returns False, else None."""
        data = os.read(self.fd, 1 << 20)
        if not data:
            return "stdin"
        while b"\n" in data:
            head, data = data.split(b"\n", 1)
            self.partial.append(head)
            line = b"".join(self.partial)
            self.partial = []
            if not command(line):
                return "quit"
        self.partial.append(data)
        return None


def apply_socket_options(s, args):
    """The socket options the peers share, from their command-line arguments (an option a peer does
    not define is skipped). Subscriptions are left to the caller: they come after every other option."""
    opt = lambda name: getattr(args, name, None)  # noqa: E731
    s.setsockopt(zmq.LINGER, args.linger)
    if opt("routing_id") is not None:
        s.setsockopt(zmq.ROUTING_ID, bytes.fromhex(args.routing_id))
    if opt("connect_routing_id") is not None:
        s.setsockopt(zmq.CONNECT_ROUTING_ID, bytes.fromhex(args.connect_routing_id))
    if opt("router_mandatory"):
        s.setsockopt(zmq.ROUTER_MANDATORY, 1)
    for name, option in (
        ("heartbeat_ivl", zmq.HEARTBEAT_IVL),
        ("heartbeat_ttl", zmq.HEARTBEAT_TTL),
        ("heartbeat_timeout", zmq.HEARTBEAT_TIMEOUT),
        ("reconnect_ivl", zmq.RECONNECT_IVL),
        ("maxmsgsize", zmq.MAXMSGSIZE),
    ):
        if opt(name) is not None:
            s.setsockopt(option, opt(name))
