#!/usr/bin/env python3
"""An independent pyzmq implementation of SONiC's ZMQ state-table messages, for the interop tests of
the Rust crate `statetable` (statetable/tests/interop_python.rs). Written from the format's
description in issue 17 (SONiC's common/binaryserializer.h), not from the Rust code.

The format: one ZeroMQ message of one frame. A little-endian u64 count of pairs, then that many pairs,
each ``[u64 len][len bytes]`` (key) then ``[u64 len][len bytes]`` (value). Pair 0 is (database name,
table name). Then per operation a pair (key, N in decimal ASCII) and N (field, value) pairs; N = 0
is a DEL, otherwise a SET. A message is smaller than 16 MiB.

Subcommands:

    produce --connect EP --db D --table T [--batch N] [--encoding E]
        PUSH, connects; reads JSON lines on stdin, ``{"op":"set","key":"k","fields":{"f":"v"}}`` or
        ``{"op":"del","key":"k"}``, and sends each operation (or each N consecutive ones) as one
        single-frame message. Closes with LINGER 5000 when stdin ends; prints ``SENT <ops> <msgs>``.

    consume --bind EP --count N [--timeout S]
        PULL, binds (``tcp://127.0.0.1:*`` works); prints ``READY <endpoint>``, then one JSON line per
        operation received, ``{"db","table","key","op":"set"|"del","fields":[[f,v],...],"msg":M}``
        (M numbers the messages from 0, so batches show), and ``{"malformed": reason}`` for a
        message it refuses. Exits 0 after N operations, 1 on timeout
        (default 20 s).

    encode --db D --table T [--encoding E]
        Reads JSON lines on stdin; prints the hex of one message holding all of them.

    decode
        Reads hex lines on stdin (one message each); prints one JSON line per message:
        ``{"db","table","ops":[{"key","op","fields"}...]}`` or ``{"error": reason}``.

Strings of the JSON input become bytes by ``--encoding`` (utf-8 by default; latin-1 maps U+0000 to
U+00FF to the bytes 0x00 to 0xFF, so any bytes can be written). Bytes are printed as latin-1 strings.
"""

import argparse
import json
import struct
import sys
import time

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
U64 = struct.Struct("<Q")


class Malformed(Exception):
    """A message that does not follow the format."""


# ------------------------------------------------------------------------------------------------
# Encoding
# ------------------------------------------------------------------------------------------------


def put(out, data):
    out.append(U64.pack(len(data)))
    out.append(data)


def encode(db, table, ops):
    """One message: ``ops`` is a list of (key, fields) where fields is a list of (field, value), or
    None for a DEL. Everything is bytes."""
    body = []
    pairs = 1
    put(body, db)
    put(body, table)
    for key, fields in ops:
        fields = fields or []
        put(body, key)
        put(body, str(len(fields)).encode("ascii"))
        pairs += 1
        for f, v in fields:
            put(body, f)
            put(body, v)
            pairs += 1
    msg = U64.pack(pairs) + b"".join(body)
    if len(msg) >= MAX_MESSAGE_BYTES:
        raise ValueError(f"message of {len(msg)} bytes is too large")
    return msg


def parse_line(line, encoding):
    """A JSON input line as (key, fields or None)."""
    obj = json.loads(line)
    op = obj.get("op")
    key = obj["key"].encode(encoding)
    if op == "del":
        return (key, None)
    if op == "set":
        fields = [(f.encode(encoding), v.encode(encoding)) for f, v in obj.get("fields", {}).items()]
        return (key, fields)
    raise ValueError(f"unknown op {op!r}")


def read_ops(encoding):
    for n, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        try:
            yield parse_line(line, encoding)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            sys.stderr.write(f"statetable_peer: line {n}: {e}\n")
            sys.exit(2)


# ------------------------------------------------------------------------------------------------
# Decoding: every length is checked against the bytes left before anything is read or allocated.
# ------------------------------------------------------------------------------------------------


def decode(buf):
    """(db, table, [(key, "set"|"del", [(f, v)...])...]); raises Malformed."""
    size = len(buf)
    if size >= MAX_MESSAGE_BYTES:
        raise Malformed(f"message of {size} bytes is too large")
    pos = 0

    def u64():
        nonlocal pos
        if size - pos < 8:
            raise Malformed(f"truncated length at byte {pos}")
        (value,) = U64.unpack_from(buf, pos)
        pos += 8
        return value

    def string():
        nonlocal pos
        n = u64()
        if n > size - pos:
            raise Malformed(f"string of {n} bytes at byte {pos}, {size - pos} left")
        s = bytes(buf[pos:pos + n])
        pos += n
        return s

    count = u64()
    # Each pair is at least two lengths (16 bytes): refuse a count the frame cannot hold.
    if count > (size - pos) // 16:
        raise Malformed(f"pair count {count} cannot fit in {size} bytes")
    if count == 0:
        raise Malformed("no (database, table) pair")
    db = string()
    table = string()
    left = count - 1
    ops = []
    while left > 0:
        key = string()
        digits = string()
        left -= 1
        # SONiC writes std::to_string(size_t): at most 20 digits; refuse anything else before int().
        if not digits or len(digits) > 19 or not all(0x30 <= b <= 0x39 for b in digits):
            raise Malformed(f"field count {digits[:24]!r} is not a decimal number")
        n = int(digits)
        if n > left:
            raise Malformed(f"{n} fields announced, {left} pairs left")
        fields = []
        for _ in range(n):
            fields.append((string(), string()))
        left -= n
        ops.append((key, "set" if n else "del", fields))
    if pos != size:
        raise Malformed(f"{size - pos} bytes after the last pair")
    return db, table, ops


def text(b):
    return b.decode("latin-1")


def op_json(db, table, op):
    key, kind, fields = op
    return {"db": text(db), "table": text(table), "key": text(key), "op": kind,
            "fields": [[text(f), text(v)] for f, v in fields]}


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


# ------------------------------------------------------------------------------------------------
# Subcommands
# ------------------------------------------------------------------------------------------------


def cmd_produce(args):
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 5000)
    sock.connect(args.connect)
    db, table = args.db.encode(args.encoding), args.table.encode(args.encoding)
    sent_ops = sent_msgs = 0
    batch = []

    def flush():
        nonlocal sent_ops, sent_msgs, batch
        if batch:
            sock.send(encode(db, table, batch))
            sent_ops += len(batch)
            sent_msgs += 1
            batch = []

    for op in read_ops(args.encoding):
        batch.append(op)
        if len(batch) >= args.batch:
            flush()
    flush()
    sock.close()  # waits up to LINGER for the queue to leave
    ctx.term()
    print(f"SENT {sent_ops} {sent_msgs}", flush=True)


def cmd_consume(args):
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.PULL)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
    sock.bind(args.bind)
    print("READY", sock.getsockopt_string(zmq.LAST_ENDPOINT), flush=True)
    deadline = time.monotonic() + args.timeout
    got = 0
    msgs = 0
    while got < args.count:
        left_ms = int((deadline - time.monotonic()) * 1000)
        if left_ms <= 0 or not sock.poll(left_ms):
            sys.stderr.write(f"statetable_peer: timed out after {got} of {args.count} operations\n")
            sock.close()
            ctx.term()
            sys.exit(1)
        frames = sock.recv_multipart(copy=True)
        msgs += 1
        if len(frames) != 1:
            emit({"malformed": f"{len(frames)} frames"})
            continue
        try:
            db, table, ops = decode(frames[0])
        except Malformed as e:
            emit({"malformed": str(e)})
            continue
        for op in ops:
            emit(dict(op_json(db, table, op), msg=msgs - 1))
            got += 1
    sock.close()
    ctx.term()


def cmd_encode(args):
    ops = list(read_ops(args.encoding))
    print(encode(args.db.encode(args.encoding), args.table.encode(args.encoding), ops).hex(), flush=True)


def cmd_decode(_args):
    for line in sys.stdin:
        line = line.strip()
        try:
            db, table, ops = decode(bytes.fromhex(line))
        except Malformed as e:
            emit({"error": str(e)})
            continue
        except ValueError as e:
            emit({"error": f"not hex: {e}"})
            continue
        emit({"db": text(db), "table": text(table),
              "ops": [{k: v for k, v in op_json(db, table, op).items() if k not in ("db", "table")}
                      for op in ops]})


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    prod = sub.add_parser("produce")
    prod.add_argument("--connect", required=True)
    prod.add_argument("--db", required=True)
    prod.add_argument("--table", required=True)
    prod.add_argument("--batch", type=int, default=1)
    prod.add_argument("--encoding", default="utf-8", choices=["utf-8", "latin-1"])
    cons = sub.add_parser("consume")
    cons.add_argument("--bind", required=True)
    cons.add_argument("--count", type=int, required=True)
    cons.add_argument("--timeout", type=float, default=20.0)
    enc = sub.add_parser("encode")
    enc.add_argument("--db", required=True)
    enc.add_argument("--table", required=True)
    enc.add_argument("--encoding", default="utf-8", choices=["utf-8", "latin-1"])
    sub.add_parser("decode")
    args = p.parse_args()
    if getattr(args, "batch", 1) < 1:
        p.error("--batch must be at least 1")
    {"produce": cmd_produce, "consume": cmd_consume, "encode": cmd_encode, "decode": cmd_decode}[args.cmd](args)


if __name__ == "__main__":
    main()
