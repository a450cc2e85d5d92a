//! Transports: how an [`Endpoint`] becomes a listener or a connected byte stream.
//!
//! The engine sees one [`Stream`] type and one [`Listener`] type whatever the transport; the per-transport
//! details live in [`tcp`], [`ipc`] (Unix domain sockets) and [`inproc`] (in-memory pipes between
//! sockets of this process). Nothing here speaks ZMTP: the bytes are the driver's business.

// The socket engine that uses these items is being written; until then some are unused.
#![allow(dead_code)]

pub(crate) mod inproc;
pub(crate) mod ipc;
pub(crate) mod tcp;

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::endpoint::Endpoint;

/// A connected byte stream of any transport.
#[derive(Debug)]
pub(crate) enum Stream {
    /// A TCP connection (TCP_NODELAY set).
    Tcp(tokio::net::TcpStream),
    /// A Unix domain socket connection (`ipc://`).
    Ipc(tokio::net::UnixStream),
    /// One end of an in-memory pipe (`inproc://`).
    Inproc(tokio::io::DuplexStream),
}

impl Stream {
    /// Ready once a read may return data, end of stream or an error, without reading (so no buffer is
    /// needed to wait: an idle connection holds none). Registers `cx` for read readiness when pending.
    /// Inproc pipes cannot report readiness alone: always ready (the read itself then waits).
    pub(crate) fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Tcp(s) => s.poll_read_ready(cx),
            Stream::Ipc(s) => s.poll_read_ready(cx),
            Stream::Inproc(_) => Poll::Ready(Ok(())),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Ipc(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Inproc(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Ipc(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Inproc(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Ipc(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Inproc(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Tcp(s) => s.is_write_vectored(),
            Stream::Ipc(s) => s.is_write_vectored(),
            Stream::Inproc(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Ipc(s) => Pin::new(s).poll_flush(cx),
            Stream::Inproc(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Ipc(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Inproc(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// Options the transports need, named after the libzmq socket options they mirror.
#[derive(Debug, Clone, Default)]
pub(crate) struct TransportOptions {
    /// `ZMQ_TCP_KEEPALIVE`: `None` leaves SO_KEEPALIVE at the OS default, `Some(false)` turns it off,
    /// `Some(true)` turns it on and applies the three settings below. As in libzmq, those are ignored
    /// unless this is `Some(true)`.
    pub tcp_keepalive: Option<bool>,
    /// `ZMQ_TCP_KEEPALIVE_IDLE`: idle time before the first probe; `None` = OS default.
    pub tcp_keepalive_idle: Option<Duration>,
    /// `ZMQ_TCP_KEEPALIVE_INTVL`: time between probes; `None` = OS default.
    pub tcp_keepalive_interval: Option<Duration>,
    /// `ZMQ_TCP_KEEPALIVE_CNT`: unanswered probes before the connection is dropped; `None` = OS
    /// default. Ignored on platforms without TCP_KEEPCNT.
    pub tcp_keepalive_count: Option<u32>,
    /// `ZMQ_CONNECT_TIMEOUT` (tcp): how long one connection attempt to one resolved address may take;
    /// `None` = the OS default.
    pub connect_timeout: Option<Duration>,
    /// `ZMQ_IPV6`: when false, `*` binds 0.0.0.0 and host names resolve to IPv4 addresses only; when
    /// true, `*` binds `[::]` dual-stack and names resolve to both families. IPv6 *literals* are used
    /// either way (libzmq refuses them when this is false).
    pub ipv6: bool,
}

/// The listening side of any transport: a bound TCP or Unix socket, or a registered inproc name.
///
/// Dropping it stops listening: an ipc listener removes the socket file it created, an inproc one
/// frees its name.
#[derive(Debug)]
pub(crate) struct Listener {
    /// The transport-specific listener.
    inner: ListenerInner,
}

/// The transport-specific part of a [`Listener`].
#[derive(Debug)]
enum ListenerInner {
    /// A TCP listener.
    Tcp(tcp::TcpListener),
    /// A Unix domain socket listener.
    Ipc(ipc::IpcListener),
    /// A registered inproc name.
    Inproc(inproc::InprocListener),
}

impl Listener {
    /// Binds `endpoint`. Returns the listener and the endpoint actually bound, for read-back as
    /// libzmq's `ZMQ_LAST_ENDPOINT`: `tcp://127.0.0.1:*` → `tcp://127.0.0.1:41234`, `tcp://*:5555` →
    /// `tcp://0.0.0.0:5555` (`tcp://[::]:5555` with `ipv6`), a host name → the address it resolved to,
    /// `ipc://*` → the path chosen; other ipc and inproc endpoints come back unchanged.
    ///
    /// Errors: `AddrInUse` when the address, path or name is taken (see [`ipc::IpcListener::bind`]
    /// for how stale ipc socket files are handled), `InvalidInput` for an unusable endpoint, and
    /// whatever the OS or the resolver reports.
    pub(crate) async fn bind(
        endpoint: &Endpoint,
        options: &TransportOptions,
    ) -> io::Result<(Listener, Endpoint)> {
        let (inner, bound) = match endpoint {
            Endpoint::Tcp { host, port } => {
                let (listener, bound) = tcp::TcpListener::bind(host, *port, options).await?;
                (ListenerInner::Tcp(listener), bound)
            }
            Endpoint::Ipc(path) => {
                let (listener, bound) = ipc::IpcListener::bind(path).await?;
                (ListenerInner::Ipc(listener), bound)
            }
            Endpoint::Inproc(name) => {
                (ListenerInner::Inproc(inproc::InprocListener::bind(name)?), endpoint.clone())
            }
        };
        Ok((Listener { inner }, bound))
    }

    /// Waits for the next connection and returns it with a description of the peer for logs
    /// (`"127.0.0.1:5000"`, `"[::1]:5000"`, `"ipc"` or `"inproc"`).
    ///
    /// Cancel-safe: if the future is dropped before it completes, no connection is lost, so it can sit
    /// in a `tokio::select!` loop. An error does not close the listener (for instance `EMFILE`); the
    /// caller decides whether to retry, ideally after a pause.
    pub(crate) async fn accept(&mut self) -> io::Result<(Stream, String)> {
        match &mut self.inner {
            ListenerInner::Tcp(listener) => listener.accept().await,
            ListenerInner::Ipc(listener) => listener.accept().await,
            ListenerInner::Inproc(listener) => listener.accept().await,
        }
    }
}

/// Connects to `endpoint`.
///
/// - tcp: resolves the name asynchronously ([`tokio::net::lookup_host`]; IPv4 only unless
///   `options.ipv6`), tries each address in turn with `options.connect_timeout` per attempt
///   (`TimedOut` when it expires), and returns the last error if none answers. TCP_NODELAY and the
///   keepalive options are set on the stream. A `*` host or port, or port 0, is `InvalidInput`.
/// - ipc: connects to the socket at the path (`ipc://@name`: the Linux abstract namespace).
///   `ipc://*` is `InvalidInput`.
/// - inproc: connects to the listener bound to the name; if there is none yet, waits until one binds
///   it (libzmq ≥ 4 allows connect before bind). Dropping the future abandons the wait.
pub(crate) async fn connect(endpoint: &Endpoint, options: &TransportOptions) -> io::Result<Stream> {
    match endpoint {
        Endpoint::Tcp { host, port } => tcp::connect(host, *port, options).await,
        Endpoint::Ipc(path) => ipc::connect(path).await,
        Endpoint::Inproc(name) => inproc::connect(name).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A fresh directory under the system temporary directory, removed with its contents on drop.
    pub(crate) struct TempDir(PathBuf);

    impl TempDir {
        /// Creates `zmtp-test-<tag>-<pid>-<n>` in the temporary directory.
        pub(crate) fn new(tag: &str) -> TempDir {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!("zmtp-test-{tag}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }

        /// The directory.
        pub(crate) fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Sends bytes both ways over a connected pair, including one vectored write.
    pub(crate) async fn exchange(a: &mut Stream, b: &mut Stream) {
        a.write_all(b"hello").await.unwrap();
        let mut buf = [0u8; 5];
        b.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello");

        b.write_all(b"world!").await.unwrap();
        let mut buf = [0u8; 6];
        a.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"world!");

        let parts = [IoSlice::new(b"vec"), IoSlice::new(b"tor"), IoSlice::new(b"ed")];
        // One vectored write; whatever it did not take (a transport may write only the first slice)
        // goes out with a plain write.
        let n = a.write_vectored(&parts).await.unwrap();
        assert!(n > 0);
        a.write_all(&b"vectored"[n..]).await.unwrap();
        let mut buf = [0u8; 8];
        b.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"vectored");
    }

    #[tokio::test]
    async fn stream_reports_vectored_writes_for_os_sockets() {
        let (mut listener, bound) =
            Listener::bind(&"tcp://127.0.0.1:*".parse().unwrap(), &TransportOptions::default())
                .await
                .unwrap();
        let mut client = connect(&bound, &TransportOptions::default()).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        assert!(client.is_write_vectored());
        assert!(server.is_write_vectored());
        exchange(&mut client, &mut server).await;
    }

    #[tokio::test]
    async fn dispatches_every_transport() {
        let dir = TempDir::new("dispatch");
        let endpoints = [
            "tcp://127.0.0.1:*".to_owned(),
            format!("ipc://{}", dir.path().join("s").display()),
            "inproc://transport-mod-dispatch".to_owned(),
        ];
        for text in endpoints {
            let endpoint: Endpoint = text.parse().unwrap();
            let options = TransportOptions::default();
            let (mut listener, bound) = Listener::bind(&endpoint, &options).await.unwrap();
            let mut client = connect(&bound, &options).await.unwrap();
            let (mut server, peer) = listener.accept().await.unwrap();
            assert!(!peer.is_empty());
            exchange(&mut client, &mut server).await;
        }
    }
}
