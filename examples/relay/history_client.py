#!/usr/bin/env python3
"""Asks the relay for historical OHLC data and prints the reply (docs/relay-protocol.md, section 1).

    python3 examples/relay/history_client.py BINANCE:BTC/USDT '{"period": "1h", "start": 0, "end": 7200}'

A REQ socket sends [0x07, request_id, ticker, params]; the reply is [0x08, request_id, status, data...].
It prints the status and each data frame (UTF-8 where it decodes, else hex), one per line:

    status: OK
    frame 1 (183 bytes): {"ticker": "BINANCE:BTC/USDT", ...}

Exit status: 0 for OK, 1 for any other status (ERROR, TIMEOUT, UNAVAILABLE, ...), 2 when no reply came
within --timeout seconds. --wait S retries an UNAVAILABLE reply (no ingestor serves the exchange yet,
e.g. one just started) for up to S seconds. Needs pyzmq (pip install pyzmq).
"""

import argparse
import sys
import time
import uuid

import zmq

OHLC_REQUEST = b"\x07"
RESPONSE = b"\x08"


def ask(ctx, endpoint, ticker, params, timeout):
    """One request on a fresh REQ socket: (status, data frames), or None without a reply in time."""
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, int(timeout * 1000))
    sock.connect(endpoint)
    request_id = uuid.uuid4().hex.encode()
    try:
        sock.send_multipart([OHLC_REQUEST, request_id, ticker.encode(), params.encode()])
        reply = sock.recv_multipart()
    except zmq.Again:
        return None
    finally:
        sock.close()
    if len(reply) < 3 or reply[0] != RESPONSE or reply[1] != request_id:
        raise SystemExit(f"history_client: unexpected reply: {reply!r}")
    return reply[2].decode("ascii", "replace"), reply[3:]


def show(frame):
    try:
        return frame.decode("utf-8")
    except UnicodeDecodeError:
        return "hex " + frame.hex()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ticker", help="EXCHANGE:SYMBOL, e.g. BINANCE:BTC/USDT")
    ap.add_argument("params", nargs="?", default='{"period": "1h"}', help="opaque request parameters (default JSON)")
    ap.add_argument("--endpoint", default="tcp://127.0.0.1:5559", help="the relay's client port")
    ap.add_argument("--timeout", type=float, default=35.0, help="seconds to wait for a reply")
    ap.add_argument("--wait", type=float, default=0.0, help="seconds to retry while the answer is UNAVAILABLE")
    args = ap.parse_args()

    ctx = zmq.Context()
    deadline = time.monotonic() + args.wait
    while True:
        answer = ask(ctx, args.endpoint, args.ticker, args.params, args.timeout)
        if answer is None:
            print(f"history_client: no reply from {args.endpoint} within {args.timeout} s", file=sys.stderr)
            return 2
        status, frames = answer
        if status != "UNAVAILABLE" or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    print(f"status: {status}")
    for i, frame in enumerate(frames, 1):
        print(f"frame {i} ({len(frame)} bytes): {show(frame)}")
    sys.stdout.flush()
    ctx.destroy(linger=0)
    return 0 if status == "OK" else 1


if __name__ == "__main__":
    sys.exit(main())
