//! A blocking facade for programs without an async runtime: [`Socket`] runs the same sockets on one
//! background tokio runtime shared by every blocking socket in the process, and blocks the calling
//! thread on each operation.
//!
//! ```
//! use zmtp::blocking::Socket;
//! use zmtp::SocketType;
//!
//! # fn main() -> zmtp::Result<()> {
//! let pull = Socket::new(SocketType::Pull)?;
//! let endpoint = pull.bind("inproc://blocking-doc")?;
//! let push = Socket::new(SocketType::Push)?;
//! push.connect(&endpoint)?;
//! push.send("job")?;
//! assert_eq!(pull.recv()?.frames()[0], "job");
//! # Ok(()) }
//! ```

use std::sync::OnceLock;

use bytes::Bytes;

use crate::error::{Error, Result, SendError};
use crate::message::Msg;
use crate::proto::SocketType;
use crate::runtime::monitor::{Monitor, SocketEvent};
use crate::runtime::options::Options;

/// The background runtime (two worker threads), started on first use.
fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<std::io::Result<tokio::runtime::Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("zmtp-io")
                .enable_all()
                .build()
        })
        .as_ref()
        .map_err(|e| Error::Runtime(std::io::Error::new(e.kind(), e.to_string())))
}

/// Runs `future` to completion on the calling thread, on the background runtime the blocking
/// sockets use (started on first use), so that crates built on zmtp offer blocking calls without a
/// runtime of their own.
///
/// # Errors
/// [`Error::InvalidState`] when called from within an async runtime (blocking there would stall
/// it; tokio would panic); [`Error::Runtime`] if the background runtime cannot start.
pub fn block_on<F: std::future::Future>(future: F) -> Result<F::Output> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::InvalidState("blocking call from within an async runtime"));
    }
    Ok(runtime()?.block_on(future))
}

/// A blocking handle to a [`crate::Socket`]. Must not be used from within an async task (blocking
/// there would stall the runtime); use [`crate::Socket`] there.
#[derive(Debug, Clone)]
pub struct Socket {
    inner: crate::Socket,
    runtime: &'static tokio::runtime::Runtime,
}

impl Socket {
    /// A socket of `socket_type` with default options.
    pub fn new(socket_type: SocketType) -> Result<Socket> {
        Socket::with_options(socket_type, Options::default())
    }

    /// A socket of `socket_type` with `options`.
    pub fn with_options(socket_type: SocketType, options: Options) -> Result<Socket> {
        let runtime = runtime()?;
        Ok(Socket { inner: crate::Socket::with_options(socket_type, options)?, runtime })
    }

    /// The async socket behind this handle.
    pub fn as_async(&self) -> &crate::Socket {
        &self.inner
    }

    /// Binds; returns the endpoint bound. See [`crate::Socket::bind`].
    pub fn bind(&self, endpoint: &str) -> Result<String> {
        self.runtime.block_on(self.inner.bind(endpoint))
    }

    /// Connects in the background. See [`crate::Socket::connect`].
    pub fn connect(&self, endpoint: &str) -> Result<()> {
        let _guard = self.runtime.enter();
        self.inner.connect(endpoint)
    }

    /// Connects with a routing id. See [`crate::Socket::connect_with_routing_id`].
    pub fn connect_with_routing_id(&self, endpoint: &str, routing_id: impl Into<Bytes>) -> Result<()> {
        let _guard = self.runtime.enter();
        self.inner.connect_with_routing_id(endpoint, routing_id)
    }

    /// Stops listening on an endpoint. See [`crate::Socket::unbind`].
    pub fn unbind(&self, endpoint: &str) -> Result<()> {
        self.inner.unbind(endpoint)
    }

    /// Disconnects from an endpoint. See [`crate::Socket::disconnect`].
    pub fn disconnect(&self, endpoint: &str) -> Result<()> {
        self.inner.disconnect(endpoint)
    }

    /// Sends, blocking while the socket type says to wait (up to `send_timeout`).
    pub fn send(&self, msg: impl Into<Msg>) -> Result<(), SendError> {
        self.runtime.block_on(self.inner.send(msg))
    }

    /// Sends if possible without waiting.
    pub fn try_send(&self, msg: impl Into<Msg>) -> Result<(), SendError> {
        self.inner.try_send(msg)
    }

    /// Receives, blocking up to `recv_timeout`.
    pub fn recv(&self) -> Result<Msg> {
        self.runtime.block_on(self.inner.recv())
    }

    /// Receives if a message is queued.
    pub fn try_recv(&self) -> Result<Msg> {
        self.inner.try_recv()
    }

    /// A blocking stream of the socket's events.
    pub fn monitor(&self) -> BlockingMonitor {
        BlockingMonitor { inner: self.inner.monitor(), runtime: self.runtime }
    }

    /// Closes the socket, blocking until queued messages are sent or `linger` expires.
    pub fn close(self) {
        self.runtime.block_on(self.inner.close());
    }
}

/// A blocking [`Monitor`].
#[derive(Debug)]
pub struct BlockingMonitor {
    inner: Monitor,
    runtime: &'static tokio::runtime::Runtime,
}

impl BlockingMonitor {
    /// The next event; `None` once the socket is closed.
    pub fn recv(&mut self) -> Option<SocketEvent> {
        self.runtime.block_on(self.inner.recv())
    }

    /// The next event if one is queued.
    pub fn try_recv(&mut self) -> Option<SocketEvent> {
        self.inner.try_recv()
    }
}
