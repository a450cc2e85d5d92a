#!/usr/bin/env python3
"""Writes the fuzz seed corpora under fuzz/seeds/<target>/ from the libzmq golden vectors.

Reads zmtp/tests/golden/libzmq.hex ('#' comments; '<name> <hex>' lines; a name with no hex is
allowed and skipped) and writes one file per seed:

  greeting/         the 64-octet greetings
  command/          each command frame's body (frame header stripped: 2 octets short, 9 long)
  metadata/         READY bodies after '05 READY'
  frame_stream/     2 control octets + messages, subscriptions, PINGs and PONGs as a peer sends them
  connection_full/  2 control octets + greeting + READY + messages, for compatible socket pairs
  statetable_wire/  the state-table messages of statetable/tests/golden/*.hex (hand-written vectors of
                    SONiC's format), as they are, plus a few hand-made ones

The control octets match the targets: frame_stream's octet 0 picks the (ours, peer's) pair from its
PAIRS table, connection_full's octet 0 bits 0-3 pick our type in SocketType::ALL order; octet 1 seeds
the chunking. Python 3 standard library only. Usage: python3 fuzz/make_seeds.py

The seeds of curve_server, curve_client, plain and z85 need real CURVE handshakes and come from
`cargo run --manifest-path fuzz/Cargo.toml --example make_seeds_secure` instead; this script leaves
them alone.
"""

import pathlib
import shutil
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "zmtp" / "tests" / "golden" / "libzmq.hex"
SEEDS = ROOT / "fuzz" / "seeds"

# SocketType::ALL order (zmtp/src/proto/socket_type.rs).
ALL = ["REQ", "REP", "DEALER", "ROUTER", "PUB", "SUB", "XPUB", "XSUB", "PUSH", "PULL", "PAIR"]
# frame_stream.rs PAIRS: (ours, peer's).
PAIRS = [("DEALER", "ROUTER"), ("XPUB", "SUB"), ("PULL", "PUSH"), ("ROUTER", "DEALER"),
         ("SUB", "PUB"), ("PUB", "XSUB"), ("PAIR", "PAIR"), ("REP", "REQ")]
# connection_full.rs octet 0 bits above the type.
SMALL_LIMITS, HEARTBEAT, OURS_V30 = 0x20, 0x40, 0x80
# The seed directories this script owns (and replaces).
OWN_TARGETS = ["greeting", "command", "metadata", "frame_stream", "connection_full", "statetable_wire"]
# The state-table golden vectors: '#' lines are comments, the rest hex with whitespace ignored.
STATETABLE_GOLDEN = ROOT / "statetable" / "tests" / "golden"


def load():
    vectors = {}
    for lineno, line in enumerate(GOLDEN.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, hexstr = line.partition(" ")
        hexstr = hexstr.strip()
        if not hexstr:
            continue
        try:
            vectors[name] = bytes.fromhex(hexstr)
        except ValueError as e:
            sys.exit(f"{GOLDEN}:{lineno}: bad hex for {name}: {e}")
    return vectors


def frames(data):
    """Splits a byte string into (flags, header length, body) frames; stops at a partial frame."""
    out = []
    i = 0
    while i + 2 <= len(data):
        flags = data[i]
        if flags & 2:
            if i + 9 > len(data):
                break
            size, hlen = int.from_bytes(data[i + 1:i + 9], "big"), 9
        else:
            size, hlen = data[i + 1], 2
        if i + hlen + size > len(data):
            break
        out.append((flags, hlen, data[i + hlen:i + hlen + size]))
        i += hlen + size
    return out


def is_command(v):
    f = frames(v)
    return len(f) == 1 and f[0][0] & 4 != 0


def main():
    v = load()
    # Only the directories written here (examples/make_seeds_secure.rs writes the CURVE, PLAIN and
    # Z85 targets' seeds: they need real handshakes), and in them, not the hand-added
    # 'regression-*' inputs of past crashes.
    for target in OWN_TARGETS:
        d = SEEDS / target
        if d.exists():
            for f in d.iterdir():
                if f.is_dir():
                    shutil.rmtree(f)
                elif not f.name.startswith("regression-"):
                    f.unlink()
    written = {}

    def put(target, name, data):
        assert target in OWN_TARGETS, target
        d = SEEDS / target
        d.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(data)
        written[target] = written.get(target, 0) + 1

    greetings = {n: b for n, b in v.items() if n.startswith("greeting_")}
    for n, b in greetings.items():
        put("greeting", n, b)
    greeting = greetings.get("greeting_null_bound") or next(iter(greetings.values()))
    greeting_v30 = greeting[:11] + b"\x00" + greeting[12:]

    commands = {n: b for n, b in v.items() if not n.startswith("greeting_") and is_command(b)}
    for n, b in commands.items():
        put("command", n, frames(b)[0][2])
        body = frames(b)[0][2]
        if body.startswith(b"\x05READY"):
            put("metadata", n, body[6:])
    # Hand-made: the commands libzmq never sent in the capture.
    put("command", "synthetic_error", b"\x05ERROR\x13Invalid socket type")
    put("command", "synthetic_ping_ctx", b"\x04PING\x00\x00LOL")
    put("command", "synthetic_unknown", b"\x05HELLO\x00\x01")

    messages = {n: b for n, b in v.items()
                if not is_command(b) and not n.startswith("greeting_")
                and frames(b) and sum(h + len(x) for _, h, x in frames(b)) == len(b)}
    heartbeats = {n: b for n, b in commands.items() if n.startswith(("ping_", "pong_"))}
    subs = {n: b for n, b in commands.items() if n.startswith(("subscribe_", "cancel_"))}
    sub_msgs = {n: b for n, b in messages.items() if "subscribe" in n or "cancel" in n}

    def pair(ours, theirs):
        return PAIRS.index((ours, theirs))

    # frame_stream: [pair, seed] + stream.
    for i, (n, b) in enumerate(messages.items()):
        put("frame_stream", n, bytes([pair("PULL", "PUSH"), i]) + b)
    for i, (n, b) in enumerate({**subs, **sub_msgs}.items()):
        put("frame_stream", n, bytes([pair("XPUB", "SUB"), i]) + b)
    for i, (n, b) in enumerate(heartbeats.items()):
        put("frame_stream", n, bytes([pair("DEALER", "ROUTER"), i]) + b)
    everything = b"".join(messages.values()) + b"".join(heartbeats.values())
    put("frame_stream", "all_messages_and_heartbeats", bytes([pair("ROUTER", "DEALER"), 7]) + everything)
    put("frame_stream", "long_frame_header_only",
        bytes([pair("PULL", "PUSH"), 1]) + v["msg_long_70000_header"] + b"c" * 100)
    put("frame_stream", "mid_message_ping",
        bytes([pair("PULL", "PUSH"), 3]) + b"\x01\x03abc" + v["ping_ttl_1500"] + b"\x00\x03def")

    # connection_full: [config, seed] + greeting + READY(peer) + traffic.
    msg_stream = b"".join(messages.values())
    plans = [
        ("DEALER", "ready_router", msg_stream + b"".join(heartbeats.values()), 0),
        ("ROUTER", "ready_dealer_id_cli1", msg_stream, 0),
        ("REQ", "ready_rep", v["msg_abc"], 0),
        ("REP", "ready_req_id_cli1", v["msg_multipart_envelope"], 0),
        ("PULL", "ready_push", msg_stream, SMALL_LIMITS),
        ("PUSH", "ready_pull", b"", HEARTBEAT),
        ("XPUB", "ready_sub", b"".join(subs.values()) + b"".join(sub_msgs.values()), 0),
        ("PUB", "ready_xsub", b"".join(subs.values()), HEARTBEAT),
        ("SUB", "ready_pub", msg_stream, OURS_V30),
        ("XSUB", "ready_xpub", msg_stream, 0),
        ("PAIR", "ready_pair", msg_stream + v["ping_ttl_1500"], HEARTBEAT),
        ("ROUTER", "ready_dealer_metadata", v["msg_abc"], 0),
    ]
    for i, (ours, ready, traffic, bits) in enumerate(plans):
        cfg = ALL.index(ours) | bits
        put("connection_full", f"{ours.lower()}_{ready}",
            bytes([cfg, i]) + greeting + v[ready] + traffic)
    put("connection_full", "pull_v30_peer",
        bytes([ALL.index("PULL"), 99]) + greeting_v30 + v["ready_push"] + msg_stream)
    put("connection_full", "dealer_greeting_only", bytes([ALL.index("DEALER"), 5]) + greeting)
    put("connection_full", "router_incompatible_pub",
        bytes([ALL.index("ROUTER"), 6]) + greeting + v["ready_pub"])

    # statetable_wire: one frame of SONiC's state-table format, as the decoder gets it.
    for f in sorted(STATETABLE_GOLDEN.glob("*.hex")):
        text = "".join(line for line in f.read_text().splitlines() if not line.lstrip().startswith("#"))
        put("statetable_wire", f.stem, bytes.fromhex("".join(text.split())))

    def st_msg(pairs):
        out = len(pairs).to_bytes(8, "little")
        for k, val in pairs:
            out += len(k).to_bytes(8, "little") + k + len(val).to_bytes(8, "little") + val
        return out

    # Hand-made: many DELs of empty keys (the densest operations: the decoder's largest allocation
    # per input byte, see fuzz_targets/statetable_wire.rs), a field count with leading zeros, a count that announces more than is there.
    put("statetable_wire", "synthetic_many_dels", st_msg([(b"D", b"T")] + [(b"", b"0")] * 200))
    # Just past a doubling of the operations' vector (4 << k, plus one): its peak per input byte.
    put("statetable_wire", "synthetic_dels_past_doubling", st_msg([(b"D", b"T")] + [(b"", b"0")] * 1025))
    put("statetable_wire", "synthetic_leading_zeros", st_msg([(b"D", b"T"), (b"k", b"0002"), (b"a", b"1"), (b"b", b"")]))
    put("statetable_wire", "synthetic_missing_fields", st_msg([(b"D", b"T"), (b"k", b"3"), (b"a", b"1")]))

    for target in sorted(written):
        print(f"make_seeds: {written[target]:3} seeds in fuzz/seeds/{target}/")


if __name__ == "__main__":
    main()
