//! End-to-end tests of streamed responses (docs/relay-protocol.md §7, protocol 1.1): `PARTIAL` chunks
//! forwarded one by one to DEALER clients, assembled into one reply for REQ clients under the caps,
//! the timeout restarting with each chunk, and a 50 MB stream through a relay whose memory stays flat.
//! The `relay` binary with real pyzmq clients and ingestors (tests/peers/relay_peer.py).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::time::{Duration, Instant};

use common::*;

const PARTIAL: &str = "PARTIAL";

/// Sends a `PARTIAL` chunk of `data` frames for `id` from ingestor `name`.
fn chunk(py: &mut Py, name: &str, id: &[u8], data: &[&[u8]]) {
    py.send(&format!("{name}_r"), &response(id, PARTIAL, data));
}

/// Sends a request from REQ `client` and waits for its work message on ingestor `ing`.
fn req_request(py: &mut Py, client: &str, id: &[u8]) {
    py.send(client, &body(id, b"BINANCE:BTC/USDT", b"{}"));
    expect_work(py, "ing", "BINANCE:", id, "BINANCE:BTC/USDT", b"{}");
}

/// Sends a request from DEALER `client` and waits for its work message on ingestor `ing`.
fn dealer_request(py: &mut Py, client: &str, id: &[u8]) {
    py.send(client, &dealer_req(id, b"BINANCE:BTC/USDT", b"{}"));
    expect_work(py, "ing", "BINANCE:", id, "BINANCE:BTC/USDT", b"{}");
}

/// The relay's resident set size and its peak so far, in bytes (`VmRSS`, `VmHWM`).
fn rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kb * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Stops the relay with SIGTERM and returns its `streams` line (the counters at shutdown).
fn streams_line(relay: &mut Relay) -> String {
    let mark = relay.mark();
    relay.signal("TERM");
    assert!(relay.wait_exit(STEP).is_some(), "the relay did not stop");
    relay.wait_log(mark, &["INFO", "streams"], STEP)
}

/// A DEALER client gets each chunk as its own `PARTIAL` reply as soon as it arrives (the next chunk
/// is sent only after the client has the previous one), in order, then the final; a REQ client gets
/// one reply with every chunk's frames then the final's, with the final's status (`OK` or `ERROR`);
/// a client that sends no `PARTIAL`-aware request sees nothing new; a chunk for a request that is
/// not pending is dropped and counted; the counters at shutdown agree.
#[test]
fn dealer_gets_each_chunk_and_req_gets_one_assembled_reply() {
    let mut relay = debug_relay(&[]);
    let mut py = Py::new();
    add_ingestor(&mut py, &mut relay, "ing", &["BINANCE:"]);
    py.sock("cli", "DEALER", "connect", &relay.client_ep(), &[]);
    py.sock("req", "REQ", "connect", &relay.client_ep(), &[]);
    let mark = relay.mark();

    // DEALER: 5 chunks of two frames (one of them empty), each received before the next is sent.
    dealer_request(&mut py, "cli", b"d-1");
    for i in 0..5u8 {
        let label = format!("chunk-{i}");
        let rows = if i == 2 { Vec::new() } else { vec![i; 300] };
        chunk(&mut py, "ing", b"d-1", &[label.as_bytes(), &rows]);
        let r = parse_reply(&py.msg("cli"), true);
        assert_eq!((r.id.as_slice(), r.status.as_str()), (&b"d-1"[..], PARTIAL), "{r:?}");
        let want = zmtp_interop::reprs(&[label.as_bytes(), &rows]);
        assert_eq!(r.data, want, "chunk {i}");
    }
    py.send("ing_r", &response(b"d-1", "OK", &[b"summary"]));
    let r = parse_reply(&py.msg("cli"), true);
    assert_eq!((r.id.as_slice(), r.status.as_str()), (&b"d-1"[..], "OK"), "{r:?}");
    assert_eq!(r.data, zmtp_interop::reprs(&[b"summary"]));
    py.no_msg("cli", QUIET, "the final is the last reply");

    // REQ: chunks [a, b], [], [c], then OK [d]: one reply a b c d.
    req_request(&mut py, "req", b"r-1");
    chunk(&mut py, "ing", b"r-1", &[b"a", b"b"]);
    chunk(&mut py, "ing", b"r-1", &[]);
    chunk(&mut py, "ing", b"r-1", &[b"c"]);
    py.no_msg("req", QUIET, "a REQ client gets nothing before the final");
    py.send("ing_r", &response(b"r-1", "OK", &[b"d"]));
    let r = parse_reply(&py.msg("req"), false);
    assert_eq!((r.id.as_slice(), r.status.as_str()), (&b"r-1"[..], "OK"), "{r:?}");
    assert_eq!(r.data, zmtp_interop::reprs(&[b"a", b"b", b"c", b"d"]));

    // REQ with an ERROR final: the status is the final's, the chunks' frames come first.
    req_request(&mut py, "req", b"r-2");
    chunk(&mut py, "ing", b"r-2", &[b"partial rows"]);
    py.send("ing_r", &response(b"r-2", "ERROR", &[b"exchange failed midway"]));
    let r = parse_reply(&py.msg("req"), false);
    assert_eq!((r.id.as_slice(), r.status.as_str()), (&b"r-2"[..], "ERROR"), "{r:?}");
    assert_eq!(r.data, zmtp_interop::reprs(&[&b"partial rows"[..], b"exchange failed midway"]));

    // Without PARTIAL, exactly as before.
    req_request(&mut py, "req", b"r-3");
    py.send("ing_r", &response(b"r-3", "OK", &[b"x"]));
    let r = parse_reply(&py.msg("req"), false);
    assert_eq!((r.status.as_str(), r.data.clone()), ("OK", zmtp_interop::reprs(&[b"x"])), "{r:?}");

    // A chunk for a request that is not pending (answered, or never asked): dropped, counted.
    chunk(&mut py, "ing", b"d-1", &[b"late"]);
    chunk(&mut py, "ing", b"nobody", &[b"stray"]);
    // Status matching is byte-exact: "partial" is a malformed response.
    req_request(&mut py, "req", b"r-4");
    py.send("ing_r", &response(b"r-4", "partial", &[b"x"]));
    relay.wait_log(mark, &["dropped", "kind=response not pending"], STEP);
    relay.wait_log(mark, &["dropped", "kind=malformed response"], STEP);
    py.send("ing_r", &response(b"r-4", "OK", &[]));
    assert_eq!(parse_reply(&py.msg("req"), false).status, "OK");
    py.no_msg("cli", QUIET, "no stray chunk reaches anyone");
    py.no_msg("req", Duration::ZERO, "no stray chunk reaches anyone");

    relay.wait_log(mark, &["response sent", "request_id=d-1", "status=PARTIAL"], STEP);
    let line = streams_line(&mut relay);
    for (k, v) in [
        ("chunks_received", "9"),
        ("chunks_forwarded", "5"),
        ("chunks_assembled", "4"),
        ("chunks_dropped", "2"),
        ("assembled_replies", "2"),
        ("streams_ended", "0"),
    ] {
        assert!(has_field(&line, k, v), "{k}={v}: {line}");
    }
}

/// The caps on assembly for REQ clients: a response over `max_message_bytes` gets `ERROR` ("response
/// larger than N bytes") at the chunk that crosses it, and the rest of its stream is dropped and
/// counted; one that would take the relay past `max_assembly_bytes` in all gets `ERROR` too (and
/// frees its share), while the others go on. Each REQ client gets exactly one reply, the id stays
/// pending until the final, and memory freed by one is usable by the next.
#[test]
fn req_over_a_cap_gets_error_and_the_rest_is_dropped() {
    // Each 1,500-byte frame counts 1,564 bytes (64 of overhead): two fit 4,096, three do not; three
    // fit 6,000 in all, four do not.
    let mut relay = debug_relay(&[("max_message_bytes", "4096"), ("max_assembly_bytes", "6000")]);
    let mut py = Py::new();
    add_ingestor(&mut py, &mut relay, "ing", &["BINANCE:"]);
    py.sock("a", "REQ", "connect", &relay.client_ep(), &[]);
    py.sock("b", "REQ", "connect", &relay.client_ep(), &[]);
    let mark = relay.mark();
    let frame = [7u8; 1500];

    req_request(&mut py, "a", b"a-1");
    req_request(&mut py, "b", b"b-1");
    chunk(&mut py, "ing", b"a-1", &[&frame]);
    chunk(&mut py, "ing", b"a-1", &[&frame]);
    chunk(&mut py, "ing", b"b-1", &[&frame]);
    // b's second chunk takes the total to 6,256 > 6,000.
    chunk(&mut py, "ing", b"b-1", &[&frame]);
    let r = parse_reply(&py.msg("b"), false);
    assert_eq!((r.id.as_slice(), r.status.as_str()), (&b"b-1"[..], "ERROR"), "{r:?}");
    assert_eq!(r.reason(), "relay assembly memory full (6000 bytes)");
    // a's third chunk takes a to 4,692 > 4,096.
    chunk(&mut py, "ing", b"a-1", &[&frame]);
    let r = parse_reply(&py.msg("a"), false);
    assert_eq!((r.id.as_slice(), r.status.as_str()), (&b"a-1"[..], "ERROR"), "{r:?}");
    assert_eq!(r.reason(), "response larger than 4096 bytes");
    relay.wait_log(
        mark,
        &["WARN", "stream ended", "request_id=a-1", "reason=response larger than 4096 bytes"],
        STEP,
    );

    // The rest of both streams is dropped: later chunks and the finals.
    chunk(&mut py, "ing", b"a-1", &[b"more"]);
    py.send("ing_r", &response(b"b-1", "OK", &[b"end"]));
    relay.wait_log(mark, &["dropped", "kind=stream ended"], STEP);
    py.no_msg("a", QUIET, "one reply per request");
    py.no_msg("b", Duration::ZERO, "one reply per request");
    // a-1 is still pending (its stream goes on upstream): the id is a DUPLICATE until its final.
    py.sock("dup", "DEALER", "connect", &relay.client_ep(), &[]);
    let r = dealer_roundtrip(&mut py, "dup", b"a-1", "BINANCE:BTC/USDT", b"");
    r.assert_status("DUPLICATE");
    py.send("ing_r", &response(b"a-1", "OK", &[]));

    // Everything was freed: a fresh stream under both caps is assembled.
    req_request(&mut py, "a", b"a-2");
    chunk(&mut py, "ing", b"a-2", &[&frame]);
    chunk(&mut py, "ing", b"a-2", &[&frame[..100]]);
    py.send("ing_r", &response(b"a-2", "OK", &[b"end"]));
    let r = parse_reply(&py.msg("a"), false);
    assert_eq!((r.id.as_slice(), r.status.as_str()), (&b"a-2"[..], "OK"), "{r:?}");
    assert_eq!(r.data, zmtp_interop::reprs(&[&frame[..], &frame[..100], b"end"]));

    let line = streams_line(&mut relay);
    for (k, v) in [("streams_ended", "2"), ("chunks_dropped", "3"), ("chunks_assembled", "5")] {
        assert!(has_field(&line, k, v), "{k}={v}: {line}");
    }
}

/// The request timeout restarts with each chunk: with `request_timeout_secs = 1`, chunks 0.6 s
/// apart (2.4 s in all) complete for a DEALER and a REQ client; a gap longer than the timeout after
/// some chunks ends in `TIMEOUT` (after the chunks already forwarded).
#[test]
fn the_timeout_restarts_with_each_chunk() {
    let mut relay = debug_relay(&[("request_timeout_secs", "1")]);
    let mut py = Py::new();
    add_ingestor(&mut py, &mut relay, "ing", &["BINANCE:"]);
    py.sock("cli", "DEALER", "connect", &relay.client_ep(), &[]);
    py.sock("req", "REQ", "connect", &relay.client_ep(), &[]);

    dealer_request(&mut py, "cli", b"slow-d");
    req_request(&mut py, "req", b"slow-r");
    let started = Instant::now();
    for i in 0..4u8 {
        // The pacing is what is tested: each gap is below the timeout, their sum well above it.
        std::thread::sleep(Duration::from_millis(600));
        chunk(&mut py, "ing", b"slow-d", &[&[i]]);
        chunk(&mut py, "ing", b"slow-r", &[&[i]]);
        let r = parse_reply(&py.msg("cli"), true);
        assert_eq!((r.status.as_str(), r.data.clone()), (PARTIAL, zmtp_interop::reprs(&[[i]])), "{r:?}");
    }
    std::thread::sleep(Duration::from_millis(600));
    py.send("ing_r", &response(b"slow-d", "OK", &[]));
    py.send("ing_r", &response(b"slow-r", "OK", &[]));
    assert!(started.elapsed() > Duration::from_millis(2400));
    let r = parse_reply(&py.msg("cli"), true);
    assert_eq!((r.id.as_slice(), r.status.as_str()), (&b"slow-d"[..], "OK"), "{r:?}");
    let r = parse_reply(&py.msg("req"), false);
    assert_eq!((r.id.as_slice(), r.status.as_str()), (&b"slow-r"[..], "OK"), "{r:?}");
    assert_eq!(r.data, zmtp_interop::reprs(&[[0u8], [1], [2], [3]]));

    // A stream that stalls times out: the DEALER has its chunks, then TIMEOUT; the REQ only TIMEOUT.
    dealer_request(&mut py, "cli", b"stall-d");
    req_request(&mut py, "req", b"stall-r");
    chunk(&mut py, "ing", b"stall-d", &[b"one"]);
    chunk(&mut py, "ing", b"stall-r", &[b"one"]);
    assert_eq!(parse_reply(&py.msg("cli"), true).status, PARTIAL);
    parse_reply(&py.msg("cli"), true).assert_status("TIMEOUT");
    parse_reply(&py.msg("req"), false).assert_status("TIMEOUT");
}

/// A 50 MB response (50 chunks of 1 MiB) streamed to a DEALER client that reads as it goes: every
/// chunk arrives in order and intact, and the relay's resident memory grows by far less than the
/// response (bound: 20 MiB over its size before the stream; each chunk is forwarded, not held).
/// The ingestor keeps at most 8 chunks ahead of what the client has received, as an ingestor
/// paced by its network would; the relay's own queues are what is measured.
#[test]
fn fifty_megabytes_stream_through_flat_relay_memory() {
    const CHUNKS: usize = 50;
    const CHUNK: usize = 1 << 20;
    const AHEAD: usize = 8;
    const BOUND: u64 = 20 << 20;
    let mut relay = debug_relay(&[]);
    let mut py = Py::new();
    add_ingestor(&mut py, &mut relay, "ing", &["BINANCE:"]);
    py.sock("cli", "DEALER", "connect", &relay.client_ep(), &[]);
    let send_chunk = |py: &mut Py, id: &[u8], i: usize| {
        let label = format!("part-{i:02}");
        py.cmd(&format!(
            "SEND ing_r 02:{}:{}:{}:z{CHUNK}",
            hex(id),
            hex(PARTIAL.as_bytes()),
            hex(label.as_bytes())
        ));
    };
    let big = zmtp_interop::frame_repr(&vec![0u8; CHUNK]);

    // Warm up (first connections, first large buffers) with a small stream, then measure.
    dealer_request(&mut py, "cli", b"warm");
    for i in 0..2 {
        send_chunk(&mut py, b"warm", i);
        assert_eq!(parse_reply(&py.msg("cli"), true).status, PARTIAL);
    }
    py.send("ing_r", &response(b"warm", "OK", &[]));
    assert_eq!(parse_reply(&py.msg("cli"), true).status, "OK");
    let (before, _) = rss(relay.pid());

    dealer_request(&mut py, "cli", b"big");
    let mut sent = 0;
    while sent < AHEAD {
        send_chunk(&mut py, b"big", sent);
        sent += 1;
    }
    let mut peak_rss = before;
    for i in 0..CHUNKS {
        let r = parse_reply(&py.msg_within("cli", Duration::from_secs(30)), true);
        assert_eq!((r.id.as_slice(), r.status.as_str()), (&b"big"[..], PARTIAL), "chunk {i}: {r:?}");
        let label = format!("part-{i:02}");
        assert_eq!(r.data, vec![zmtp_interop::frame_repr(label.as_bytes()), big.clone()], "chunk {i}");
        if sent < CHUNKS {
            send_chunk(&mut py, b"big", sent);
            sent += 1;
        }
        peak_rss = peak_rss.max(rss(relay.pid()).0);
    }
    py.send("ing_r", &response(b"big", "OK", &[]));
    assert_eq!(parse_reply(&py.msg("cli"), true).status, "OK");
    let (after, peak_hwm) = rss(relay.pid());
    let grown = peak_rss.saturating_sub(before);
    let grown_hwm = peak_hwm.saturating_sub(before);
    println!(
        "relay RSS: {:.1} MiB before, peak {:.1} MiB while streaming (+{:.1} MiB), {:.1} MiB after; \
         VmHWM {:.1} MiB (+{:.1} MiB over the start); {} MiB streamed",
        before as f64 / 1048576.0,
        peak_rss as f64 / 1048576.0,
        grown as f64 / 1048576.0,
        after as f64 / 1048576.0,
        peak_hwm as f64 / 1048576.0,
        grown_hwm as f64 / 1048576.0,
        (CHUNKS * CHUNK) >> 20,
    );
    assert!(grown < BOUND, "the relay's RSS grew by {grown} bytes streaming 50 MiB (bound {BOUND})");
    assert!(grown_hwm < BOUND, "the relay's peak RSS grew by {grown_hwm} bytes (bound {BOUND})");
}

/// A DEALER client that does not read while a stream outruns it: once a chunk cannot be queued
/// (its queue is full: `high_water_mark = 4`, after the kernel's buffers) the stream ends for that
/// client ("client too slow", logged), the rest is dropped and counted, and when it reads again it
/// finds an unbroken run of chunks from the first, then `ERROR` "client too slow" (queued at the
/// final, since its queue was full when the stream ended), never a stream with a hole in it.
#[test]
fn a_dealer_too_slow_for_its_stream_gets_an_unbroken_prefix_then_error() {
    const CHUNK: usize = 1 << 20;
    let mut relay = debug_relay(&[("high_water_mark", "4")]);
    let mut py = Py::new();
    add_ingestor(&mut py, &mut relay, "ing", &["BINANCE:"]);
    let mark = relay.mark();
    // A raw ZMTP DEALER, so that nothing reads on its behalf.
    let mut s = raw_connect(relay.client_port);
    let mut rd = RawReader::new();
    write_lossy(&mut s, &greeting(3, 1, b"NULL", false));
    write_lossy(&mut s, &ready("DEALER"));
    rd.greeting(&mut s, STEP).unwrap();
    assert!(rd.frame(&mut s, STEP).unwrap().command, "READY");
    write_lossy(&mut s, &frames_wire(&dealer_req(b"slow", b"BINANCE:BTC/USDT", b"")));
    expect_work(&mut py, "ing", "BINANCE:", b"slow", "BINANCE:BTC/USDT", b"");

    let mut sent = 0;
    let send_chunk = |py: &mut Py, i: usize| {
        let label = format!("part-{i:02}");
        py.cmd(&format!(
            "SEND ing_r 02:{}:{}:{}:z{CHUNK}",
            hex(b"slow"),
            hex(PARTIAL.as_bytes()),
            hex(label.as_bytes())
        ));
    };
    // Far more than the loopback buffers and 4 queued messages hold.
    while sent < 40 {
        send_chunk(&mut py, sent);
        sent += 1;
    }
    relay.wait_log(mark, &["WARN", "stream ended", "request_id=slow", "reason=client too slow"], STEP);
    send_chunk(&mut py, sent);
    relay.wait_log(mark, &["dropped", "kind=stream ended"], STEP);

    // The client reads again: chunks 0..k in order, nothing after the hole.
    let mut got = 0;
    let last = loop {
        let msg = match rd.message(&mut s, Duration::from_secs(2)) {
            Ok(m) => m,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) => {
                break None
            }
            Err(e) => panic!("read: {e}"),
        };
        assert_eq!(&msg[..3], &[b"".to_vec(), vec![RESPONSE], b"slow".to_vec()], "{:?}", &msg[..3]);
        if msg[3] != PARTIAL.as_bytes() {
            break Some(msg);
        }
        assert_eq!(msg[4], format!("part-{got:02}").as_bytes(), "chunk {got} in order");
        assert_eq!(msg[5].len(), CHUNK);
        got += 1;
    };
    assert!(got > 0 && got < 40, "an unbroken run of chunks, then the end: {got}");
    println!("the slow client got chunks 0 to {} of 41 (1 MiB each), then ERROR", got - 1);
    let error = match last {
        Some(msg) => msg,
        None => {
            // The ERROR could not be queued when the stream ended: it goes at the final.
            py.send("ing_r", &response(b"slow", "OK", &[]));
            rd.message(&mut s, STEP).unwrap()
        }
    };
    assert_eq!(error[3], b"ERROR", "{:?}", &error[..4]);
    assert_eq!(error[4], b"client too slow");
    assert!(rd.message(&mut s, QUIET).is_err(), "nothing after the ERROR");
}
