#!/usr/bin/env python3
"""A sample ingestor: serves one or more exchange prefixes with canned OHLC data (docs/relay-protocol.md).

    python3 examples/relay/ingestor.py BINANCE: KRAKEN:

A SUB socket on the relay's work port subscribes to each prefix (that is how the relay learns which
exchanges are served); each work message [prefix, 0x01, request_id, ticker, params] is answered on a
DEALER socket connected to the response port with [0x02, request_id, OK, data], where data is a JSON
list of candles made up from the ticker (the same request always gets the same candles). A ticker whose
symbol is ERROR gets status ERROR instead, to show the other path. One line per request on stdout.

Runs until SIGINT/SIGTERM, or until --count requests were answered. Needs pyzmq (pip install pyzmq).
"""

import argparse
import json
import signal
import sys
import zlib

import zmq

DATA_REQUEST = b"\x01"
DATA_RESPONSE = b"\x02"


def candles(ticker, params, n=3):
    """Deterministic made-up candles for a ticker: a price walk seeded by the ticker's CRC."""
    seed = zlib.crc32(ticker.encode())
    price = 100 + seed % 900
    rows = []
    for i in range(n):
        step = ((seed >> (i % 24)) % 21) - 10
        o, c = price, price + step
        rows.append({"t": i * 3600, "o": o, "h": max(o, c) + 1, "l": min(o, c) - 1, "c": c, "v": 10 + i})
        price = c
    return {"ticker": ticker, "params": params, "candles": rows}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("prefixes", nargs="*", default=["BINANCE:"], help="exchange prefixes served (default BINANCE:)")
    ap.add_argument("--work", default="tcp://127.0.0.1:5555", help="the relay's ingestor work port")
    ap.add_argument("--responses", default="tcp://127.0.0.1:5556", help="the relay's ingestor response port")
    ap.add_argument("--count", type=int, default=0, help="exit after answering this many requests (0: never)")
    args = ap.parse_args()

    ctx = zmq.Context()
    work = ctx.socket(zmq.SUB)
    for prefix in args.prefixes:
        work.setsockopt(zmq.SUBSCRIBE, prefix.encode())
    work.connect(args.work)
    out = ctx.socket(zmq.DEALER)
    out.setsockopt(zmq.LINGER, 2000)  # let the last answers leave before exiting
    out.connect(args.responses)

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    print(f"ingestor: serving {' '.join(args.prefixes)} from {args.work}, answering to {args.responses}", flush=True)

    answered = 0
    poller = zmq.Poller()
    poller.register(work, zmq.POLLIN)
    while not stop and (args.count == 0 or answered < args.count):
        if not poller.poll(200):
            continue
        msg = work.recv_multipart()
        if len(msg) != 5 or msg[1] != DATA_REQUEST:
            print(f"ingestor: ignoring a malformed work message of {len(msg)} frames", flush=True)
            continue
        _prefix, _type, request_id, ticker_b, params_b = msg
        ticker = ticker_b.decode("utf-8", "replace")
        params = params_b.decode("utf-8", "replace")
        if ticker.split(":", 1)[-1] == "ERROR":
            status, data = b"ERROR", f"no data for {ticker}".encode()
        else:
            status, data = b"OK", json.dumps(candles(ticker, params)).encode()
        out.send_multipart([DATA_RESPONSE, request_id, status, data])
        answered += 1
        print(f"ingestor: {ticker} {params} -> {status.decode()}", flush=True)

    work.close(linger=0)
    out.close()
    ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
