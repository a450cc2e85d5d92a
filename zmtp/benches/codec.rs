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
use zmtp::proto::{Connection, ConnectionConfig, Event, SocketType};
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
                let mut n = 0;
                let mut rest = &wire[..];
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
                assert_eq!(n, BATCH);
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

criterion_group!(benches, decode, encode);
criterion_main!(benches);
