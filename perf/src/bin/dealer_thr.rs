//! `dealer_thr <connect-endpoint> <msg-size> <msg-count>`
//!
//! DEALER socket connects and sends msg-count single-frame messages of msg-size bytes (clones of one
//! shared `Bytes`: zero-copy), then stays connected until the receiver hangs up (at most 30 s; seen
//! as the monitor's `Disconnected` event), closes and exits (bench/README.md; as
//! bench/libzmq/dealer_thr.c). Prints to stderr how long queueing took and when the peer was done.
//!
//! `BENCH_CURVE=1`: CURVE client (it connects) with bench/README.md's fixed keys ([`zmtp_perf::secure`]).
//!
//! Runtime: current-thread by default (`BENCH_RT=multi` for a 2-worker multi-thread one).

fn main() {
    let a = zmtp_perf::args("dealer_thr <connect-endpoint> <msg-size> <msg-count>", "msg-count");
    zmtp_perf::run(
        zmtp_perf::Flavor::Current,
        zmtp_perf::thr_sender("dealer_thr", zmtp::SocketType::Dealer, a),
    )
}
