//! Socket-level interop: our `zmtp::Socket`s against pyzmq (libzmq 4.3.5) sockets, every compatible
//! pair of types, over tcp and ipc, with our socket binding and with pyzmq binding.
//!
//! Each case names who starts the exchange and what envelope each side adds or sees; every case runs
//! the same bodies (multipart, one empty frame, empty frames in the middle and in front, frames longer
//! than 64 bytes and around the 255/256-byte short/long frame switch, and 16 MiB over tcp for some) in
//! all four setups. Frames are compared as `tests/peers/sock_peer.py` prints them: `<len>:<hex>`, or
//! `<len>:crc32=<crc>` beyond 64 bytes; what we receive is also compared byte for byte where we know
//! the content. Identities and pipelined traffic have their own tests at the end.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use zmtp::{Msg, Options, Socket, SocketType};
use zmtp_interop::sockets::{blocking, link, recv, send, send_routed, Side, SETUPS};
use zmtp_interop::{frame_repr, hex, reprs, Kind, STEP};

/// 16 MiB.
const BIG: usize = 16 << 20;

/// An envelope frame one side adds or sees before the body.
#[derive(Debug, Clone, Copy)]
enum Pre {
    /// The empty delimiter frame of REQ/REP envelopes.
    Delim,
    /// A routing id set by the test.
    Id(&'static [u8]),
    /// A routing id the ROUTER generated: 5 bytes, the first 0x00 (libzmq's and ours).
    Generated,
}

/// Who sends first and what each side adds and sees.
#[derive(Debug, Clone, Copy)]
enum Flow {
    /// We send `send ++ body`; pyzmq (echoing) sees `py_sees ++ body`; we get back `we_get ++ body`.
    WeAsk { send: &'static [Pre], py_sees: &'static [Pre], we_get: &'static [Pre] },
    /// pyzmq sends `py_send ++ body`; we see `we_get ++ body` and echo it; pyzmq gets `py_gets ++ body`.
    TheyAsk { py_send: &'static [Pre], we_get: &'static [Pre], py_gets: &'static [Pre] },
    /// We send the body, pyzmq receives it.
    WePush,
    /// pyzmq sends the body, we receive it.
    TheyPush,
}

/// One pair of socket types.
#[derive(Debug, Clone, Copy)]
struct Case {
    ours: SocketType,
    theirs: &'static str,
    flow: Flow,
    /// Our `routing_id` option.
    our_id: Option<&'static [u8]>,
    /// When we connect: the routing id we give the peer (`connect_with_routing_id`, ROUTER only).
    our_connect_id: Option<&'static [u8]>,
    /// Extra `sock_peer.py` arguments in every setup.
    py_args: &'static [&'static str],
    /// Extra `sock_peer.py` arguments when pyzmq connects.
    py_connect_args: &'static [&'static str],
    /// Also send a 16 MiB message over tcp.
    big: bool,
}

const fn case(ours: SocketType, theirs: &'static str, flow: Flow) -> Case {
    Case {
        ours,
        theirs,
        flow,
        our_id: None,
        our_connect_id: None,
        py_args: &[],
        py_connect_args: &[],
        big: false,
    }
}

const NONE: &[Pre] = &[];

/// This file's message bodies (see `zmtp_interop::pattern`).
fn pattern(len: usize) -> Bytes {
    zmtp_interop::pattern(len, 1)
}

fn bodies(kind: Kind, big: bool) -> Vec<Vec<Bytes>> {
    let b = Bytes::from_static;
    let mut out = vec![
        vec![b(b"hello")],
        vec![b(b"a"), b(b"bb"), b(b"ccc"), b(b"dddd")],
        // A 0-byte message: one empty frame.
        vec![Bytes::new()],
        vec![b(b"x"), Bytes::new(), b(b"y")],
        // A leading empty frame: an extra delimiter for REQ/REP envelopes to carry through.
        vec![Bytes::new(), b(b"tail")],
        vec![pattern(1000), Bytes::new(), pattern(65)],
        // Around the 255/256-byte switch from short to long frame headers.
        vec![pattern(255), pattern(256), pattern(257)],
    ];
    if big && kind == Kind::Tcp {
        out.push(vec![pattern(BIG)]);
    }
    out
}

fn pre_bytes(pre: &[Pre]) -> Vec<Bytes> {
    pre.iter()
        .map(|p| match p {
            Pre::Delim => Bytes::new(),
            Pre::Id(id) => Bytes::from_static(id),
            Pre::Generated => unreachable!("a test cannot send a generated id"),
        })
        .collect()
}

fn is_generated_id(repr: &str) -> bool {
    repr.len() == 2 + 10 && repr.starts_with("5:00") && repr[2..].bytes().all(|c| c.is_ascii_hexdigit())
}

/// Checks frames (as printed) against `pre ++ body`.
fn check(what: &str, got: &[String], pre: &[Pre], body: &[String]) {
    let ok = got.len() == pre.len() + body.len()
        && got.iter().zip(pre).all(|(g, p)| match p {
            Pre::Delim => g == "0:",
            Pre::Id(id) => *g == frame_repr(id),
            Pre::Generated => is_generated_id(g),
        })
        && got[pre.len()..] == *body;
    assert!(ok, "{what}: got {got:?}, expected {pre:?} ++ {body:?}");
}

/// The `sock_peer.py` spec of frames: hex, or `r<len>` (random bytes) for a 16 MiB frame.
fn spec(frames: &[Bytes]) -> String {
    frames
        .iter()
        .map(|f| if f.len() >= BIG { format!("r{}", f.len()) } else { hex(f) })
        .collect::<Vec<_>>()
        .join(":")
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

async fn run_case(c: Case) {
    for (kind, side) in SETUPS {
        let started = std::time::Instant::now();
        run_setup(c, kind, side).await;
        eprintln!("{} <-> {} over {kind:?}, {side:?}: {:?}", c.ours, c.theirs, started.elapsed());
    }
}

async fn run_setup(c: Case, kind: Kind, side: Side) {
    let options = Options {
        routing_id: c.our_id.map(Bytes::from_static),
        router_mandatory: c.ours == SocketType::Router && matches!(c.flow, Flow::WeAsk { .. }),
        linger: Some(Duration::ZERO),
        ..Options::default()
    };
    let ours = Socket::with_options(c.ours, options).unwrap();
    let mode = if matches!(c.flow, Flow::WeAsk { .. }) { "echo" } else { "sink" };
    let mut py_args = args(&["--mode", mode]);
    py_args.extend(args(c.py_args));
    if side == Side::WeBind {
        py_args.extend(args(c.py_connect_args));
    }
    let mut l = link(kind, side, ours, c.our_connect_id, c.theirs, &py_args).await;
    let ctx = format!("our {} <-> pyzmq {} over {kind:?}, {side:?}", c.ours, c.theirs);

    for body in bodies(kind, c.big) {
        let body_reprs = reprs(&body);
        let what = format!("{ctx}, body {:?}", body_reprs);
        match c.flow {
            Flow::WeAsk { send: pre, py_sees, we_get } => {
                let mut msg = Msg::from(pre_bytes(pre));
                for f in &body {
                    msg.push(f.clone());
                }
                if c.ours == SocketType::Router {
                    send_routed(&l.ours, msg).await;
                } else {
                    send(&l.ours, msg).await;
                }
                let seen = blocking(|| l.peer.expect_msg(STEP));
                check(&format!("{what}: pyzmq received"), &seen, py_sees, &body_reprs);
                let got = recv(&l.ours).await;
                check(&format!("{what}: we received"), &reprs(got.frames()), we_get, &body_reprs);
                assert_eq!(got.frames()[we_get.len()..], body[..], "{what}: content");
            }
            Flow::TheyAsk { py_send, we_get, py_gets } => {
                let mut frames = pre_bytes(py_send);
                frames.extend(body.iter().cloned());
                l.peer.command(&format!("SEND {}", spec(&frames)));
                let sent = blocking(|| l.peer.expect_sent(STEP));
                // What pyzmq actually sent (random bytes in place of a 16 MiB frame).
                let sent_body = &sent[py_send.len()..];
                let got = recv(&l.ours).await;
                check(&format!("{what}: we received"), &reprs(got.frames()), we_get, sent_body);
                send(&l.ours, got).await;
                let seen = blocking(|| l.peer.expect_msg(STEP));
                check(&format!("{what}: pyzmq received our echo"), &seen, py_gets, sent_body);
            }
            Flow::WePush => {
                send(&l.ours, Msg::from(body.clone())).await;
                let seen = blocking(|| l.peer.expect_msg(STEP));
                check(&format!("{what}: pyzmq received"), &seen, NONE, &body_reprs);
            }
            Flow::TheyPush => {
                l.peer.command(&format!("SEND {}", spec(&body)));
                let sent = blocking(|| l.peer.expect_sent(STEP));
                let got = recv(&l.ours).await;
                check(&format!("{what}: we received"), &reprs(got.frames()), NONE, &sent);
            }
        }
    }
    assert!(!l.peer.has_seen("SEND_FAILED"), "{ctx}: {:?}", l.peer.seen());
    l.close().await;
}

macro_rules! pair_tests {
    ($($(#[$attr:meta])* $name:ident => $case:expr;)*) => {$(
        $(#[$attr])*
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            run_case($case).await;
        }
    )*};
}

use SocketType::{Dealer, Pair, Pull, Push, Rep, Req, Router};

pair_tests! {
    /// Our REQ asks a pyzmq REP (echo).
    req_rep => case(Req, "REP", Flow::WeAsk { send: NONE, py_sees: NONE, we_get: NONE });
    /// A pyzmq REQ asks our REP.
    rep_req => case(Rep, "REQ", Flow::TheyAsk { py_send: NONE, we_get: NONE, py_gets: NONE });
    /// Our REQ asks a pyzmq ROUTER: it sees [generated id, "", body] and routes the echo back.
    req_router => case(Req, "ROUTER", Flow::WeAsk { send: NONE, py_sees: &[Pre::Generated, Pre::Delim], we_get: NONE });
    /// A pyzmq REQ asks our ROUTER: we see [generated 5-byte id, "", body].
    router_req => case(Router, "REQ", Flow::TheyAsk { py_send: NONE, we_get: &[Pre::Generated, Pre::Delim], py_gets: NONE });
    /// Our DEALER asks a pyzmq REP with an explicit delimiter.
    dealer_rep => case(Dealer, "REP", Flow::WeAsk { send: &[Pre::Delim], py_sees: NONE, we_get: &[Pre::Delim] });
    /// A pyzmq DEALER asks our REP with an explicit delimiter.
    rep_dealer => case(Rep, "DEALER", Flow::TheyAsk { py_send: &[Pre::Delim], we_get: NONE, py_gets: &[Pre::Delim] });
    /// Our DEALER and a pyzmq ROUTER (echo), with 16 MiB over tcp.
    dealer_router => Case { big: true, ..case(Dealer, "ROUTER", Flow::WeAsk { send: NONE, py_sees: &[Pre::Generated], we_get: NONE }) };
    /// A pyzmq DEALER and our ROUTER (we echo), with 16 MiB over tcp.
    router_dealer => Case { big: true, ..case(Router, "DEALER", Flow::TheyAsk { py_send: NONE, we_get: &[Pre::Generated], py_gets: NONE }) };
    /// Our DEALER and a pyzmq DEALER (echo).
    dealer_dealer => case(Dealer, "DEALER", Flow::WeAsk { send: NONE, py_sees: NONE, we_get: NONE });
    /// Our ROUTER and a pyzmq ROUTER, we send first: the connecting side names the other
    /// (`connect_with_routing_id` / `ZMQ_CONNECT_ROUTING_ID`), the bound side learns the
    /// connecting side's `ROUTING_ID` ("us" for ours, "py" for pyzmq's).
    router_router => Case {
        our_id: Some(b"us"),
        our_connect_id: Some(b"py"),
        py_args: &["--routing-id", "7079"],
        py_connect_args: &["--connect-routing-id", "7573"],
        ..case(Router, "ROUTER", Flow::WeAsk { send: &[Pre::Id(b"py")], py_sees: &[Pre::Id(b"us")], we_get: &[Pre::Id(b"py")] })
    };
    /// Our ROUTER and a pyzmq ROUTER, pyzmq sends first (ROUTER_MANDATORY, retried until we are
    /// connected).
    router_router_they_ask => Case {
        our_id: Some(b"us"),
        our_connect_id: Some(b"py"),
        py_args: &["--routing-id", "7079", "--router-mandatory", "--retry-unroutable"],
        py_connect_args: &["--connect-routing-id", "7573"],
        ..case(Router, "ROUTER", Flow::TheyAsk { py_send: &[Pre::Id(b"us")], we_get: &[Pre::Id(b"py")], py_gets: &[Pre::Id(b"us")] })
    };
    /// Our PUSH to a pyzmq PULL, with 16 MiB over tcp.
    push_pull => Case { big: true, ..case(Push, "PULL", Flow::WePush) };
    /// A pyzmq PUSH to our PULL, with 16 MiB (random, checked by CRC-32) over tcp.
    pull_push => Case { big: true, ..case(Pull, "PUSH", Flow::TheyPush) };
    /// Our PAIR and a pyzmq PAIR (echo).
    pair_pair => case(Pair, "PAIR", Flow::WeAsk { send: NONE, py_sees: NONE, we_get: NONE });
    /// A pyzmq PAIR sends first to our PAIR (we echo).
    pair_pair_they_ask => case(Pair, "PAIR", Flow::TheyAsk { py_send: NONE, we_get: NONE, py_gets: NONE });
    /// Our DEALER with `routing_id` set: a pyzmq ROUTER sees it.
    identity_our_dealer_seen_by_pyzmq_router => Case {
        our_id: Some(b"dealer-1"),
        ..case(Dealer, "ROUTER", Flow::WeAsk { send: NONE, py_sees: &[Pre::Id(b"dealer-1")], we_get: NONE })
    };
    /// Our REQ with `routing_id` set: a pyzmq ROUTER sees it before the delimiter.
    identity_our_req_seen_by_pyzmq_router => Case {
        our_id: Some(b"\x01req"),
        ..case(Req, "ROUTER", Flow::WeAsk { send: NONE, py_sees: &[Pre::Id(b"\x01req"), Pre::Delim], we_get: NONE })
    };
    /// A pyzmq DEALER with ROUTING_ID set: our ROUTER sees it.
    identity_pyzmq_dealer_seen_by_our_router => Case {
        py_args: &["--routing-id", "70792d6465616c6572"],
        ..case(Router, "DEALER", Flow::TheyAsk { py_send: NONE, we_get: &[Pre::Id(b"py-dealer")], py_gets: NONE })
    };
}

/// Two pyzmq DEALERs without ROUTING_ID connect to our ROUTER: each gets its own generated id of 5
/// bytes starting with 0x00, and replies go back to the right one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_router_generates_distinct_ids() {
    for kind in [Kind::Tcp, Kind::Ipc] {
        let router = Socket::with_options(
            SocketType::Router,
            Options { linger: Some(Duration::ZERO), ..Options::default() },
        )
        .unwrap();
        let mut a = link(kind, Side::WeBind, router, None, "DEALER", &args(&["--mode", "sink"])).await;
        let mut b =
            zmtp_interop::SockPeer::spawn(["--type", "DEALER", "--connect", &a.endpoint, "--mode", "sink"]);
        blocking(|| b.ready());
        a.peer.send(&[b"from-a"]);
        b.send(&[b"from-b"]);
        let mut ids = std::collections::HashMap::new();
        for _ in 0..2 {
            let m = recv(&a.ours).await;
            let id = m.frames()[0].clone();
            assert!(is_generated_id(&frame_repr(&id)), "{:?}", m.frames());
            ids.insert(m.frames()[1].clone(), id);
        }
        let (ida, idb) =
            (ids[&Bytes::from_static(b"from-a")].clone(), ids[&Bytes::from_static(b"from-b")].clone());
        assert_ne!(ida, idb);
        send(&a.ours, Msg::from(vec![idb, Bytes::from_static(b"to-b")])).await;
        send(&a.ours, Msg::from(vec![ida, Bytes::from_static(b"to-a")])).await;
        assert_eq!(blocking(|| a.peer.expect_msg(STEP)), reprs(&[b"to-a"]));
        assert_eq!(blocking(|| b.expect_msg(STEP)), reprs(&[b"to-b"]));
        a.close().await;
    }
}

/// Message i of `sock_peer.py --seq`: `seq-<i>` and i % 300 dots.
fn seq_body(i: usize) -> Vec<u8> {
    let mut body = format!("seq-{i}").into_bytes();
    body.resize(body.len() + i % 300, b'.');
    body
}

/// Many messages back to back, of sizes across the short/long frame boundary, in both directions
/// (our PUSH to a pyzmq PULL, a pyzmq PUSH to our PULL), in every setup: all arrive, in order, intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_messages_in_order() {
    const N: usize = 2000;
    for (kind, side) in SETUPS {
        let push = Socket::with_options(
            SocketType::Push,
            Options { linger: Some(Duration::ZERO), ..Options::default() },
        )
        .unwrap();
        let mut l = link(kind, side, push, None, "PULL", &args(&["--mode", "sink"])).await;
        let sender = {
            let push = l.ours.clone();
            tokio::spawn(async move {
                for i in 0..N {
                    send(&push, seq_body(i)).await;
                }
            })
        };
        for i in 0..N {
            let seen = blocking(|| l.peer.expect_msg(STEP));
            assert_eq!(seen, reprs(&[seq_body(i)]), "our PUSH over {kind:?}/{side:?}, message {i}");
        }
        sender.await.unwrap();
        l.close().await;

        let pull = Socket::with_options(
            SocketType::Pull,
            Options { linger: Some(Duration::ZERO), ..Options::default() },
        )
        .unwrap();
        let n = N.to_string();
        let l = link(kind, side, pull, None, "PUSH", &args(&["--mode", "sink", "--no-monitor", "--seq", &n]))
            .await;
        for i in 0..N {
            let got = recv(&l.ours).await;
            assert_eq!(got.frames(), [seq_body(i)], "pyzmq PUSH over {kind:?}/{side:?}, message {i}");
        }
        l.close().await;
    }
}
