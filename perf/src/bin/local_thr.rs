//! `local_thr <bind-endpoint> <msg-size> <msg-count>`
//!
//! PULL socket binds, receives msg-count messages of msg-size bytes and prints msgs/s and Mb/s,
//! timed from the first message to the last (bench/README.md; the same CLI and `RESULT` line as
//! bench/libzmq/local_thr.c). The first message is awaited at most 30 s, a 10 s gap ends the run
//! (exit 2, with the partial result printed).
//!
//! `BENCH_CURVE=1`: CURVE server (it binds) with bench/README.md's fixed keys ([`zmtp_perf::secure`]).
//!
//! Runtime: current-thread by default (`BENCH_RT=multi` for a 2-worker multi-thread one).

fn main() {
    let a = zmtp_perf::args("local_thr <bind-endpoint> <msg-size> <msg-count>", "msg-count");
    zmtp_perf::run(
        zmtp_perf::Flavor::Current,
        zmtp_perf::thr_receiver("local_thr", zmtp::SocketType::Pull, a),
    )
}
