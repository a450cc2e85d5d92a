//! Codec throughput of the protocol core, without sockets: decoding a stream of messages fed in 64 KiB
//! reads, and encoding messages into the transmit queue then draining it with vectored "writes".
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
    let mut a = Connection::new(ConnectionConfig::new(SocketType::Push), now);
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
        group.throughput(Throughput::Elements(BATCH as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &wire, |bench, wire| {
            bench.iter(|| {
                let (_, mut b, now) = pair();
                let mut n = 0;
                for chunk in wire.chunks(64 * 1024) {
                    b.read_buffer().extend_from_slice(chunk);
                    b.handle_read(now, chunk.len());
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
        group.throughput(Throughput::Elements(BATCH as u64));
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
