//! The runtime behind the blocking methods: one background tokio runtime for the process (two worker
//! threads), started on first use, on which sockets made by the `*_blocking` constructors run.

use std::future::Future;
use std::sync::OnceLock;

use crate::error::{Error, Result};

fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<std::io::Result<tokio::runtime::Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("statetable-io")
                .enable_all()
                .build()
        })
        .as_ref()
        .map_err(|e| Error::Runtime(std::io::Error::new(e.kind(), e.to_string())))
}

/// Runs `f` to completion on the calling thread. Refused inside an async task (tokio would panic).
pub(crate) fn block_on<F: Future>(f: F) -> Result<F::Output> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::BlockingInAsync);
    }
    Ok(runtime()?.block_on(f))
}
