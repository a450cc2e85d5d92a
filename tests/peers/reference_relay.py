#!/usr/bin/env python3
"""A reference relay on pyzmq (libzmq), for benchmark comparison with the `relay` binary.

Implements docs/relay-protocol.md sections 1 and 2 (and the request rules of section 5): a minimal
but correct relay, the way a typical Python deployment would write it, a single-threaded poller
loop for the requests plus libzmq's own proxy (zmq.proxy_steerable, which runs without the GIL) in
a second thread for the market data.

    clients    ROUTER  bind   --client-port   (5559)  requests in, replies out
    work       XPUB    bind   --work-port     (5555)  [prefix, 0x01, request_id, ticker, params]
    responses  ROUTER  bind   --response-port (5556)  [0x02, request_id, OK|ERROR, data...]
    md out     XPUB    bind   --md-port       (5558)  market-data fan-out
    md in      XSUB    connect (or bind with --upstream-bind) --upstream

Which exchanges are served: the work XPUB is left non-verbose, so libzmq passes up a topic's first
subscription and its last unsubscription (including the cancels of a subscriber that disconnects);
the relay keeps the set of topics that have at least one subscriber. (Counting every subscription
with XPUB_VERBOSER instead drifts: a SUB that subscribes one topic twice sends two subscribes but
only one cancel, and a disconnect cancels each topic once.) An exchange prefix is served while any
prefix of it (the empty topic included) is in that set.

The pending table is a dict request_id -> reply envelope; timeouts are a deque in deadline order
(the timeout is the same for every request), swept on each loop turn; an entry answered or
re-used before its deadline is skipped by identity.

Run:  $(scripts/ensure-pyzmq.sh) tests/peers/reference_relay.py --upstream tcp://127.0.0.1:5557
SIGTERM/SIGINT: pending requests are answered UNAVAILABLE ("relay shutting down"), linger 1 s,
exit 0.
"""

import argparse
import collections
import logging
import signal
import sys
import threading
import time

import zmq

log = logging.getLogger("reference_relay")

REQUEST = b"\x07"
DATA_REQUEST = b"\x01"
DATA_RESPONSE = b"\x02"
RESPONSE = b"\x08"
MAX_ENVELOPE = 32
MAX_REQUEST_BYTES = 1 << 20
MAX_REQUEST_FRAMES = 64
BATCH = 256  # messages read from one socket per loop turn


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bind-address", default="tcp://*", help="tcp://<host> the four ports bind on")
    p.add_argument("--client-port", type=int, default=5559)
    p.add_argument("--work-port", type=int, default=5555)
    p.add_argument("--response-port", type=int, default=5556)
    p.add_argument("--md-port", type=int, default=5558)
    p.add_argument("--upstream", default="tcp://flink-jobmanager:5557", help="flink_market_data_endpoint")
    p.add_argument("--upstream-bind", action="store_true", help="bind the upstream endpoint instead")
    p.add_argument("--request-timeout", type=float, default=30.0, help="seconds, > 0")
    p.add_argument("--hwm", type=int, default=10000, help="messages per peer queue")
    p.add_argument("--max-pending", type=int, default=100000)
    p.add_argument("--max-message-bytes", type=int, default=64 * 1024 * 1024)
    p.add_argument("--handshake-timeout", type=float, default=30.0)
    p.add_argument("--heartbeat-interval", type=float, default=10.0, help="0: off")
    p.add_argument("--heartbeat-timeout", type=float, default=30.0)
    p.add_argument("-v", "--verbose", action="store_true", help="log every request (info)")
    a = p.parse_args(argv)
    if a.request_timeout <= 0 or a.hwm < 1 or a.max_pending < 1:
        p.error("--request-timeout must be > 0, --hwm and --max-pending >= 1")
    return a


def text_id(rid):
    """A request_id for the log: text when printable ASCII, else 0x and hex."""
    if rid and all(0x20 <= b < 0x7F for b in rid):
        return rid.decode("ascii")
    return "0x" + rid.hex()


class Drops:
    """Drop counters, logged at warn at most once per second per kind."""

    def __init__(self):
        self.total = collections.Counter()
        self.unlogged = collections.Counter()
        self.logged_at = {}

    def add(self, kind):
        self.total[kind] += 1
        self.unlogged[kind] += 1
        now = time.monotonic()
        if now - self.logged_at.get(kind, 0.0) >= 1.0:
            log.warning("dropped kind=%s count=%d", kind, self.unlogged[kind])
            self.unlogged[kind] = 0
            self.logged_at[kind] = now


class Relay:
    def __init__(self, a, ctx):
        self.a = a
        self.ctx = ctx
        self.timeout = a.request_timeout
        self.timeout_reason = f"no response within {a.request_timeout:g}s".encode()
        self.pending = {}  # request_id -> envelope (list of frames)
        self.deadlines = collections.deque()  # (deadline, request_id, envelope)
        self.served = set()  # topics with at least one subscriber on the work port
        self.drops = Drops()
        self.stats = collections.Counter()
        self.stopping = False

        def common(sock, hwm=True):
            if hwm:
                sock.setsockopt(zmq.SNDHWM, a.hwm)
                sock.setsockopt(zmq.RCVHWM, a.hwm)
            sock.setsockopt(zmq.HANDSHAKE_IVL, int(a.handshake_timeout * 1000))
            # TCP keepalive as section 5: probes after 60 s idle, every 10 s, 3 unanswered close.
            sock.setsockopt(zmq.TCP_KEEPALIVE, 1)
            sock.setsockopt(zmq.TCP_KEEPALIVE_IDLE, 60)
            sock.setsockopt(zmq.TCP_KEEPALIVE_INTVL, 10)
            sock.setsockopt(zmq.TCP_KEEPALIVE_CNT, 3)
            if a.heartbeat_interval > 0:
                sock.setsockopt(zmq.HEARTBEAT_IVL, int(a.heartbeat_interval * 1000))
                sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, int(a.heartbeat_timeout * 1000))
            return sock

        self.clients = common(ctx.socket(zmq.ROUTER))
        self.clients.setsockopt(zmq.ROUTER_MANDATORY, 1)  # a full or gone client raises: counted
        self.clients.setsockopt(zmq.MAXMSGSIZE, MAX_REQUEST_BYTES)
        self.work = common(ctx.socket(zmq.XPUB))
        self.responses = common(ctx.socket(zmq.ROUTER))
        self.responses.setsockopt(zmq.MAXMSGSIZE, a.max_message_bytes)
        self.md_out = common(ctx.socket(zmq.XPUB))
        self.md_in = common(ctx.socket(zmq.XSUB))
        self.md_in.setsockopt(zmq.MAXMSGSIZE, a.max_message_bytes)
        self.md_in.setsockopt(zmq.RECONNECT_IVL, 100)
        self.md_in.setsockopt(zmq.RECONNECT_IVL_MAX, 5000)
        for sock, port, role in (
            (self.clients, a.client_port, "clients"),
            (self.work, a.work_port, "ingestor work"),
            (self.responses, a.response_port, "ingestor responses"),
            (self.md_out, a.md_port, "market data out"),
        ):
            endpoint = f"{a.bind_address}:{port}"
            sock.bind(endpoint)
            log.info("listening role=%s endpoint=%s", role, endpoint)
        if a.upstream_bind:
            self.md_in.bind(a.upstream)
            log.info("listening role=market data in endpoint=%s", a.upstream)
        else:
            self.md_in.connect(a.upstream)
            log.info("upstream connecting endpoint=%s", a.upstream)
        self.control = ctx.socket(zmq.PAIR)
        self.control.bind("inproc://md-control")
        proxy_control = ctx.socket(zmq.PAIR)
        proxy_control.connect("inproc://md-control")
        self.md_thread = threading.Thread(
            target=self.market_data, args=(proxy_control,), name="market-data", daemon=True
        )

    # -- market data ------------------------------------------------------------------------

    def market_data(self, control):
        """XSUB -> XPUB: data down, subscriptions up; libzmq re-sends the XSUB's subscriptions on
        reconnection. Runs until TERMINATE arrives on `control`."""
        try:
            zmq.proxy_steerable(self.md_in, self.md_out, None, control)
        except zmq.ZMQError as e:
            if e.errno != zmq.ETERM:
                log.error("market-data proxy failed: %s", e)
        finally:
            for s in (self.md_in, self.md_out, control):
                s.close(linger=1000)

    # -- requests ---------------------------------------------------------------------------

    def is_served(self, prefix):
        served = self.served
        return any(prefix[:i] in served for i in range(len(prefix) + 1))

    def reply(self, envelope, rid, status, data):
        try:
            self.clients.send_multipart(envelope + [b"", RESPONSE, rid, status] + data, zmq.NOBLOCK)
        except zmq.Again:
            self.drops.add("client queue full")
            return
        except zmq.ZMQError as e:
            if e.errno == zmq.EHOSTUNREACH:
                self.drops.add("client gone")
                return
            raise
        if self.a.verbose:
            log.info("response sent request_id=%s status=%s", text_id(rid), status.decode())

    def refuse(self, envelope, rid, status, reason):
        self.stats[status] += 1
        if self.a.verbose:
            log.info(
                "request refused request_id=%s status=%s reason=%s", text_id(rid), status.decode(), reason
            )
        self.reply(envelope, rid, status, [reason.encode()])

    def on_request(self, frames):
        try:
            d = frames.index(b"")
        except ValueError:
            self.drops.add("no delimiter")
            return
        if d > MAX_ENVELOPE:
            self.drops.add("envelope too deep")
            return
        if len(frames) > MAX_REQUEST_FRAMES:
            self.drops.add("too many frames")
            return
        envelope, body = frames[:d], frames[d + 1 :]
        rid = body[1] if len(body) > 1 and 1 <= len(body[1]) <= 64 else b""
        reason = None
        if not body or body[0] != REQUEST:
            reason = "message type must be 0x07"
        elif len(body) != 4:
            reason = f"expected 4 body frames, got {len(body)}"
        elif not rid:
            reason = "request_id must be 1 to 64 bytes"
        else:
            ticker = body[2]
            try:
                text = ticker.decode("utf-8")
            except UnicodeDecodeError:
                text = None
            colon = ticker.find(b":")
            if text is None:
                reason = "ticker is not UTF-8"
            elif len(ticker) > 256:
                reason = "ticker longer than 256 bytes"
            elif colon <= 0 or colon == len(ticker) - 1:
                reason = "ticker must be EXCHANGE:SYMBOL"
            elif len(body[3]) > 65536:
                reason = "params longer than 65536 bytes"
        if reason is not None:
            self.refuse(envelope, rid, b"BAD_REQUEST", reason)
            return
        if rid in self.pending:
            self.refuse(envelope, rid, b"DUPLICATE", "request_id already pending")
            return
        if len(self.pending) >= self.a.max_pending:
            self.refuse(envelope, rid, b"OVERLOADED", "too many pending requests")
            return
        prefix = ticker[: colon + 1]
        if not self.is_served(prefix):
            self.refuse(envelope, rid, b"UNAVAILABLE", f"no ingestor serves {prefix.decode()}")
            return
        # An XPUB never blocks: a subscriber whose queue is full misses it (the request times out).
        self.work.send_multipart([prefix, DATA_REQUEST, rid, ticker, body[3]], zmq.NOBLOCK)
        self.pending[rid] = envelope
        self.deadlines.append((time.monotonic() + self.timeout, rid, envelope))
        self.stats["forwarded"] += 1
        if self.a.verbose:
            log.info("request forwarded prefix=%s request_id=%s", prefix.decode(), text_id(rid))

    def on_response(self, frames):
        body = frames[1:]  # after the ingestor's routing id
        if len(body) < 3 or body[0] != DATA_RESPONSE or body[2] not in (b"OK", b"ERROR"):
            self.drops.add("malformed response")
            return
        rid = body[1]
        envelope = self.pending.pop(rid, None)
        if envelope is None:
            self.drops.add("response not pending")
            return
        if self.a.verbose:
            log.info("response received request_id=%s status=%s", text_id(rid), body[2].decode())
        self.stats["answered"] += 1
        self.reply(envelope, rid, body[2], body[3:])

    def on_subscription(self, msg):
        if not msg:
            return
        topic = msg[1:]
        if msg[0] == 1:
            self.served.add(topic)
            log.info("ingestor subscribed prefix=%s", topic.decode("utf-8", "replace"))
        elif msg[0] == 0:
            self.served.discard(topic)
            log.info("ingestor unsubscribed prefix=%s", topic.decode("utf-8", "replace"))

    def sweep(self, now):
        dq = self.deadlines
        while dq and dq[0][0] <= now:
            _, rid, envelope = dq.popleft()
            if self.pending.get(rid) is envelope:
                del self.pending[rid]
                self.stats["timed out"] += 1
                log.warning("request timed out request_id=%s", text_id(rid))
                self.reply(envelope, rid, b"TIMEOUT", [self.timeout_reason])

    def run(self):
        self.md_thread.start()
        poller = zmq.Poller()
        poller.register(self.clients, zmq.POLLIN)
        poller.register(self.responses, zmq.POLLIN)
        poller.register(self.work, zmq.POLLIN)
        while not self.stopping:
            now = time.monotonic()
            wait = 0.1
            if self.deadlines:
                wait = min(wait, max(0.0, self.deadlines[0][0] - now))
            events = dict(poller.poll(wait * 1000))
            # Subscriptions first, so a request right behind its ingestor's subscription is served.
            if self.work in events:
                for _ in range(BATCH):
                    try:
                        self.on_subscription(self.work.recv(zmq.NOBLOCK))
                    except zmq.Again:
                        break
            if self.responses in events:
                for _ in range(BATCH):
                    try:
                        self.on_response(self.responses.recv_multipart(zmq.NOBLOCK))
                    except zmq.Again:
                        break
            if self.clients in events:
                for _ in range(BATCH):
                    try:
                        self.on_request(self.clients.recv_multipart(zmq.NOBLOCK))
                    except zmq.Again:
                        break
            self.sweep(time.monotonic())
        self.shutdown()

    def shutdown(self):
        log.info("shutting down pending=%d", len(self.pending))
        for rid, envelope in list(self.pending.items()):
            self.reply(envelope, rid, b"UNAVAILABLE", [b"relay shutting down"])
        self.pending.clear()
        try:
            self.control.send(b"TERMINATE")
        except zmq.ZMQError:
            pass
        self.md_thread.join(timeout=2.0)
        for s in (self.clients, self.work, self.responses, self.control):
            s.close(linger=1000)
        log.info(
            "stopped forwarded=%d answered=%d timed_out=%d drops=%s",
            self.stats["forwarded"],
            self.stats["answered"],
            self.stats["timed out"],
            dict(self.drops.total),
        )


def main(argv=None):
    a = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s relay: %(message)s",
    )
    ctx = zmq.Context()
    try:
        relay = Relay(a, ctx)
    except zmq.ZMQError as e:
        log.error("start-up failed: %s", e)
        ctx.destroy(linger=0)
        return 1
    signals = []

    def on_signal(signum, _frame):
        signals.append(signum)
        if len(signals) > 1:
            import os

            os._exit(0)  # a second signal: exit at once
        relay.stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    relay.run()
    # Linger (1 s) happens here; the proxy thread is a daemon in case it did not stop.
    done = threading.Thread(target=ctx.term, daemon=True)
    done.start()
    done.join(timeout=3.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
