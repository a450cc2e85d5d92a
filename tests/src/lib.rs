//! Interop harness: runs real pyzmq (libzmq) peers as processes for the tests in `tests/tests/`.
