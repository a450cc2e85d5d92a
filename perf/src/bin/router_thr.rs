//! `router_thr <bind-endpoint> <msg-size> <msg-count>`
//!
//! ROUTER socket binds, receives msg-count `[identity][payload]` messages from DEALER peers and
//! prints msgs/s and Mb/s of the payload frames, timed from the first message to the last
//! (bench/README.md; as bench/libzmq/router_thr.c). The first message is awaited at most 30 s, a
//! 10 s gap ends the run (exit 2, with the partial result printed).
//!
//! `BENCH_CURVE=1`: CURVE server (it binds) with bench/README.md's fixed keys ([`zmtp_perf::secure`]).
//!
//! Runtime: current-thread by default (`BENCH_RT=multi` for a 2-worker multi-thread one).

fn main() {
    let a = zmtp_perf::args("router_thr <bind-endpoint> <msg-size> <msg-count>", "msg-count");
    zmtp_perf::run(
        zmtp_perf::Flavor::Current,
        zmtp_perf::thr_receiver("router_thr", zmtp::SocketType::Router, a),
    )
}
