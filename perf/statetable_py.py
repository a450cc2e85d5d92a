#!/usr/bin/env python3
"""The state-table flow of perf/src/bin/statetable_bench.rs in pyzmq, for comparison in the same run
(scripts/bench-statetable.sh): the same modes, arguments, data and JSON line.

    statetable_py.py consume --bind EP [--redis URL] [--merge] --count N
    statetable_py.py produce --connect EP --count N --batch B [--producers P]

The wire format is SONiC's (common/binaryserializer.h): a little-endian u64 pair count, then pairs
[u64 len][bytes][u64 len][bytes]; pair 0 is (db, table), then per operation (key, field count in
decimal) and that many (field, value) pairs. Encoded and decoded here with `struct`, in general
(nothing precomputed per message), as a Python application would.

consume: PULL (RCVHWM 10,000), decodes every message and hands the operations to the "application"
in pops of at most 128 (SONiC's pop batch size). With --redis the operations are written through
with redis-py: a MULTI/EXEC pipeline of DEL + HSET (HSET only with --merge) per 512 operations,
inline (Python has one core's worth of threads anyway). Prints SKIPPED when redis-py is missing.

produce: P threads, each with its own PUSH (SNDHWM 10,000) sending N/P SETs, B per message. A send
blocks on a full queue (pyzmq's default): no SONiC back-off here, which favours this side. The
socket is closed with LINGER -1, so everything queued is sent before the process exits.
"""
import argparse
import json
import os
import resource
import struct
import sys
import threading
import time
from collections import deque

import zmq

DB = b"APPL_DB"
TABLE = b"BENCH_TABLE"
KEYSPACE = 100_000
FIELDS = [(b"field_%02d" % i, b"value-%02d-abcdefg" % i) for i in range(10)]
POP = 128
REDIS_BATCH = 512
U64 = struct.Struct("<Q")


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def encode(db, table, ops):
    """ops: [(key, fields)] with fields a list of (field, value); an empty list is a DEL."""
    pack = U64.pack
    parts = [b"", pack(len(db)), db, pack(len(table)), table]
    pairs = 1
    for key, fields in ops:
        n = str(len(fields)).encode()
        parts += (pack(len(key)), key, pack(len(n)), n)
        for f, v in fields:
            parts += (pack(len(f)), f, pack(len(v)), v)
        pairs += 1 + len(fields)
    parts[0] = pack(pairs)
    return b"".join(parts)


def decode(frame):
    """(db, table, [(key, fields)]); raises ValueError on a malformed message."""
    unpack = U64.unpack_from
    end = len(frame)
    pos = 0

    def string():
        nonlocal pos
        if pos + 8 > end:
            raise ValueError("truncated")
        (n,) = unpack(frame, pos)
        pos += 8
        if n > end - pos:
            raise ValueError("truncated")
        s = frame[pos:pos + n]
        pos += n
        return s

    if end < 8:
        raise ValueError("truncated")
    (count,) = unpack(frame, 0)
    pos = 8
    if count == 0 or count > (end - 8) // 16:
        raise ValueError("bad pair count")
    db = string()
    table = string()
    left = count - 1
    ops = []
    while left:
        key = string()
        n = string()
        left -= 1
        if not n.isdigit():
            raise ValueError("bad field count")
        n = int(n)
        if n > left:
            raise ValueError("missing fields")
        fields = [(string(), string()) for _ in range(n)]
        left -= n
        ops.append((key, fields))
    if pos != end:
        raise ValueError("trailing bytes")
    return db, table, ops


def consume(a):
    wt = None
    if a.redis:
        try:
            import redis
        except ImportError:
            print(json.dumps({"impl": "pyzmq", "mode": "consume", "status": "SKIPPED",
                              "reason": "redis-py is not installed"}))
            print("SKIPPED: redis-py is not installed ($ZMTP_PYTHON -m pip install redis)", file=sys.stderr)
            return 0
        wt = redis.Redis.from_url(a.redis)
        wt.ping()
    ctx = zmq.Context()
    s = ctx.socket(zmq.PULL)
    s.setsockopt(zmq.RCVHWM, 10_000)
    s.bind(a.bind)
    print("ENDPOINT", s.getsockopt(zmq.LAST_ENDPOINT).decode(), file=sys.stderr, flush=True)
    s.setsockopt(zmq.RCVTIMEO, 30_000)
    queue = deque()
    pending = []  # operations not yet written to Redis
    got = fields = messages = pops = batches = 0
    start = cpu0 = None
    sep = b":"

    def flush_redis(ops):
        nonlocal batches
        p = wt.pipeline(transaction=True)
        for key, fv in ops:
            k = TABLE + sep + key
            if not fv or not a.merge:
                p.delete(k)
            if fv:
                p.hset(k, mapping=dict(fv))
        p.execute()
        batches += 1

    while got < a.count:
        try:
            frame = s.recv(copy=True)
        except zmq.Again:
            print(f"error: nothing for 30 s after {got} of {a.count} operations", file=sys.stderr)
            return 2
        if start is None:
            start = time.perf_counter()
            cpu0 = cpu_seconds()
        messages += 1
        try:
            db, table, ops = decode(frame)
        except ValueError as e:
            print(f"malformed message: {e}", file=sys.stderr)
            continue
        if db != DB or table != TABLE:
            continue
        queue.extend(ops)
        if wt is not None:
            pending.extend(ops)
            while len(pending) >= REDIS_BATCH:
                flush_redis(pending[:REDIS_BATCH])
                del pending[:REDIS_BATCH]
        # The application pops at most 128 at a time until the queue is empty.
        while queue:
            n = min(POP, len(queue))
            batch = [queue.popleft() for _ in range(n)]
            pops += 1
            got += n
            fields += sum(len(fv) for _, fv in batch)
    app = time.perf_counter() - start
    cpu = cpu_seconds() - cpu0
    out = {"impl": "pyzmq", "mode": "consume", "rt": "python",
           "redis": None if not a.redis else ("merge" if a.merge else "replace"),
           "ops": got, "fields": fields, "messages": messages, "pops": pops,
           "seconds": round(app, 6), "ops_per_s": round(got / app), "cpu_seconds": round(cpu, 3)}
    if wt is not None:
        if pending:
            flush_redis(pending)
        total = time.perf_counter() - start
        out.update(redis_seconds=round(total, 6), redis_ops_per_s=round(got / total),
                   redis_cpu_seconds=round(cpu_seconds() - cpu0, 3), redis_batches=batches, redis_failed=0)
    print(json.dumps(out, separators=(",", ":")), flush=True)
    s.close(linger=0)
    ctx.term()
    return 0


def producer(ctx, ep, first, n, batch, result):
    s = ctx.socket(zmq.PUSH)
    s.setsockopt(zmq.SNDHWM, 10_000)
    s.connect(ep)
    start = time.perf_counter()
    i = messages = 0
    while i < n:
        m = min(batch, n - i)
        ops = [(b"key:%012d" % ((first + i + j) % KEYSPACE), FIELDS) for j in range(m)]
        s.send(encode(DB, TABLE, ops))
        i += m
        messages += 1
    result.append((n, messages, time.perf_counter() - start))
    s.close(linger=-1)  # everything queued goes out before the thread ends


def produce(a):
    ctx = zmq.Context()
    per = a.count // a.producers
    results = []
    cpu0 = cpu_seconds()
    threads = []
    for p in range(a.producers):
        n = a.count - per * p if p + 1 == a.producers else per
        t = threading.Thread(target=producer, args=(ctx, a.connect, p * per, n, a.batch, results))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    ops = sum(r[0] for r in results)
    elapsed = max(r[2] for r in results)
    print(json.dumps({"impl": "pyzmq", "mode": "produce", "rt": "python", "batch": a.batch,
                      "producers": a.producers, "ops": ops, "messages": sum(r[1] for r in results),
                      "seconds": round(elapsed, 6), "ops_per_s": round(ops / elapsed), "stalls": 0,
                      "stalled_seconds": 0, "cpu_seconds": round(cpu_seconds() - cpu0, 3)},
                     separators=(",", ":")), flush=True)
    ctx.term()
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    c = sub.add_parser("consume")
    c.add_argument("--bind", required=True)
    c.add_argument("--redis")
    c.add_argument("--merge", action="store_true")
    c.add_argument("--count", type=int, required=True)
    p = sub.add_parser("produce")
    p.add_argument("--connect", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--producers", type=int, default=1)
    a = ap.parse_args()
    if a.mode == "produce":
        a.batch = max(1, a.batch)
        a.producers = max(1, a.producers)
        return produce(a)
    return consume(a)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
