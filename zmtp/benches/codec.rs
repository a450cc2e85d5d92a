//! Codec throughput of the protocol core, without sockets: decoding a stream of messages read the way
//! the runtime reads (into the room `read_buffer` offers, at most 64 KiB per read), and encoding
//! messages into the transmit queue then draining it with vectored "writes". Throughput is in bytes of
//! message body; messages per second = 10 000 / the time per iteration. The connections are set up as
//! the sockets set them up (bodies up to 512 octets copied next to their headers).
//! Figures: `docs/bench/` (`cargo bench -p zmtp --bench codec`).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::io::IoSlice;
use std::time::Instant;

use bytes::{Buf, Bytes};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use zmtp::proto::{Connection, ConnectionConfig, CurveSecretKey, Event, Security, SocketType};
use zmtp::Msg;

const BATCH: usize = 10_000;

fn pair() -> (Connection, Connection, Instant) {
    let now = Instant::now();
    let mut push = ConnectionConfig::new(SocketType::Push);
    push.inline_body_max = 512;
    let mut a = Connection::new(push, now);
    let mut b = Connection::new(ConnectionConfig::new(SocketType::Pull), now);
    zmtp::proto::loopback::exchange(&mut a, &mut b, now);
    assert!(a.is_ready() && b.is_ready());
    (a, b, now)
}

/// Feeds `wire` to `b` the way the runtime reads (into the room `read_buffer` offers, at most 64 KiB
/// per read) and counts the messages decoded.
fn decode_all(b: &mut Connection, wire: &[u8], now: Instant) -> usize {
    let mut n = 0;
    let mut rest = wire;
    while !rest.is_empty() {
        let buf = b.read_buffer();
        let room = (buf.capacity() - buf.len()).clamp(1, 64 * 1024).min(rest.len());
        buf.extend_from_slice(&rest[..room]);
        b.handle_read(now, room);
        rest = &rest[room..];
        while let Some(ev) = b.poll_event() {
            if let Event::Message(_) = ev {
                n += 1;
            }
        }
    }
    n
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for size in [16usize, 256, 4096, 65536] {
        let (mut a, _, _) = pair();
        let body = Bytes::from(vec![0x5a; size]);
        for _ in 0..BATCH {
            a.send_message(Msg::from(body.clone())).unwrap();
        }
        let wire = a.take_transmit();
        group.throughput(Throughput::Bytes((BATCH * size) as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &wire, |bench, wire| {
            bench.iter(|| {
                let (_, mut b, now) = pair();
                assert_eq!(decode_all(&mut b, wire, now), BATCH);
            });
        });
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for size in [16usize, 256, 4096, 65536] {
        let body = Bytes::from(vec![0x5a; size]);
        group.throughput(Throughput::Bytes((BATCH * size) as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &body, |bench, body| {
            let (mut a, _, _) = pair();
            bench.iter(|| {
                for _ in 0..BATCH {
                    a.send_message(Msg::from(body.clone())).unwrap();
                }
                // Drain as a writer would: up to 1024 iovecs per "writev".
                let q = a.transmit_mut();
                while q.has_remaining() {
                    let len = {
                        let mut iov = [IoSlice::new(&[]); 1024];
                        let n = q.chunks_vectored(&mut iov);
                        iov[..n].iter().map(|s| s.len()).sum::<usize>()
                    };
                    q.advance(len);
                }
            });
        });
    }
    group.finish();
}

/// A PUSH→PULL pair over CURVE (fixed long-term keys, fresh transient ones).
fn curve_pair() -> (Connection, Connection, Instant) {
    let now = Instant::now();
    let server = CurveSecretKey::from_bytes([1; 32]);
    let client = CurveSecretKey::from_bytes([2; 32]);
    let mut push = ConnectionConfig::new(SocketType::Push).security(Security::CurveClient {
        public: client.public_key(),
        secret: client,
        server: server.public_key(),
    });
    push.inline_body_max = 512;
    let pull = ConnectionConfig::new(SocketType::Pull)
        .security(Security::CurveServer { public: server.public_key(), secret: server });
    let mut a = Connection::new(push, now);
    let mut b = Connection::new(pull, now);
    zmtp::proto::loopback::exchange(&mut a, &mut b, now);
    assert!(a.is_ready() && b.is_ready());
    (a, b, now)
}

/// CURVE: boxing (encode) and opening (decode) 10,000 messages. Decoding needs the sender's session,
/// so each iteration's wire is made in the (unmeasured) setup.
fn curve(c: &mut Criterion) {
    let mut group = c.benchmark_group("curve_encode");
    for size in [16usize, 4096] {
        let body = Bytes::from(vec![0x5a; size]);
        group.throughput(Throughput::Bytes((BATCH * size) as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &body, |bench, body| {
            let (mut a, _, _) = curve_pair();
            bench.iter(|| {
                for _ in 0..BATCH {
                    a.send_message(Msg::from(body.clone())).unwrap();
                }
                let n = a.transmit().len();
                a.transmit_mut().advance(n);
            });
        });
    }
    group.finish();
    let mut group = c.benchmark_group("curve_decode");
    for size in [16usize, 4096] {
        let body = Bytes::from(vec![0x5a; size]);
        group.throughput(Throughput::Bytes((BATCH * size) as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &body, |bench, body| {
            bench.iter_batched(
                || {
                    let (mut a, b, now) = curve_pair();
                    for _ in 0..BATCH {
                        a.send_message(Msg::from(body.clone())).unwrap();
                    }
                    (a.take_transmit(), b, now)
                },
                |(wire, mut b, now)| assert_eq!(decode_all(&mut b, &wire, now), BATCH),
                criterion::BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, decode, encode, curve);
criterion_main!(benches);
