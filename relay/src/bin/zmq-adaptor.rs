//! The `zmq-adaptor` binary.
fn main() {}
