//! The blocking methods' way onto a runtime: zmtp's background runtime (`zmtp::blocking::block_on`),
//! shared with every blocking zmtp socket in the process, on which sockets made by the `*_blocking`
//! constructors run.

use std::future::Future;

use crate::error::{Error, Result};

/// Runs `f` to completion on the calling thread. Refused inside an async task (tokio would panic).
pub(crate) fn block_on<F: Future>(f: F) -> Result<F::Output> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::BlockingInAsync);
    }
    zmtp::blocking::block_on(f).map_err(|e| match e {
        zmtp::Error::Runtime(io) => Error::Runtime(io),
        other => Error::Socket(other),
    })
}
