//! The `ipc://` transport: Unix domain stream sockets at a filesystem path, or in the Linux abstract
//! namespace for `ipc://@name`.
//!
//! A listener removes the socket file it created when dropped, as libzmq does on close and unbind.
//! Binding over an existing socket file differs from libzmq, which unlinks whatever is there: we
//! replace only a *stale* socket (nobody listening) and never a live one or a file that is not a socket.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::net::{UnixListener, UnixStream};

use super::Stream;
use crate::runtime::endpoint::Endpoint;

/// A bound Unix domain socket listener.
#[derive(Debug)]
pub(crate) struct IpcListener {
    /// The listening socket.
    listener: UnixListener,
    /// The socket file to remove on drop; `None` in the abstract namespace (there is no file).
    socket_file: Option<SocketFile>,
}

/// The identity of a socket file we created, so that drop removes that file and not a successor that
/// somebody else bound at the same path since.
#[derive(Debug)]
struct SocketFile {
    /// The path as bound.
    path: PathBuf,
    /// The device of the file we created.
    dev: u64,
    /// The inode of the file we created.
    ino: u64,
}

impl SocketFile {
    /// Records the identity of the file now at `path`; `None` if it cannot be read (then nothing will
    /// be removed on drop).
    fn record(path: &Path) -> Option<SocketFile> {
        let meta = std::fs::symlink_metadata(path).ok()?;
        Some(SocketFile { path: path.to_owned(), dev: meta.dev(), ino: meta.ino() })
    }
}

impl Drop for IpcListener {
    /// Removes the socket file if it is still the one this listener created. Best effort: errors are
    /// ignored.
    fn drop(&mut self) {
        let Some(file) = &self.socket_file else { return };
        match std::fs::symlink_metadata(&file.path) {
            Ok(meta) if meta.dev() == file.dev && meta.ino() == file.ino => {
                if let Err(e) = std::fs::remove_file(&file.path) {
                    tracing::debug!(path = %file.path.display(), error = %e, "cannot remove ipc socket file");
                }
            }
            _ => {}
        }
    }
}

/// If `path` is `@name`, the abstract-namespace name.
fn abstract_name(path: &Path) -> Option<&[u8]> {
    path.as_os_str().as_bytes().strip_prefix(b"@")
}

/// The path tokio understands as abstract name `name` (a leading NUL byte), on Linux and Android;
/// `Unsupported` elsewhere.
fn abstract_path(name: &[u8]) -> io::Result<PathBuf> {
    if cfg!(any(target_os = "linux", target_os = "android")) {
        let mut bytes = Vec::with_capacity(name.len() + 1);
        bytes.push(0);
        bytes.extend_from_slice(name);
        Ok(PathBuf::from(OsStr::from_bytes(&bytes)))
    } else {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "ipc://@name (the abstract socket namespace) is only supported on Linux and Android",
        ))
    }
}

/// `ipc://*` is a bind-time wildcard.
fn is_wildcard(path: &Path) -> bool {
    path.as_os_str() == "*"
}

impl IpcListener {
    /// Binds `path` and returns the listener with the endpoint bound (the path chosen for `ipc://*`,
    /// otherwise `path` unchanged).
    ///
    /// - `@name` binds `name` in the Linux abstract namespace; no file is created or removed.
    /// - `*` binds a fresh `zmtp-….sock` path in [`std::env::temp_dir`].
    /// - Otherwise, if `path` already exists:
    ///   - a socket nobody listens on (a connect attempt is refused) is stale: it is removed and
    ///     replaced (a live listener sees that probe as a connection closed before its greeting);
    ///   - a socket somebody listens on is left alone and the bind fails with `AddrInUse` (libzmq
    ///     unlinks it unconditionally, stealing the path from the live listener; we do not);
    ///   - anything else (a regular file, a directory, a symlink) is left alone and the bind fails with
    ///     `AddrInUse`.
    pub(crate) async fn bind(path: &Path) -> io::Result<(IpcListener, Endpoint)> {
        if let Some(name) = abstract_name(path) {
            let listener = UnixListener::bind(abstract_path(name)?)?;
            return Ok((IpcListener { listener, socket_file: None }, Endpoint::Ipc(path.to_owned())));
        }
        if is_wildcard(path) {
            return bind_wildcard().await;
        }
        let listener = bind_path(path).await?;
        Ok((listener, Endpoint::Ipc(path.to_owned())))
    }

    /// Accepts the next connection; the peer is described as `"ipc"` (Unix peers are usually unnamed).
    /// Cancel-safe, as [`UnixListener::accept`] is.
    pub(crate) async fn accept(&mut self) -> io::Result<(Stream, String)> {
        let (stream, _) = self.listener.accept().await?;
        Ok((Stream::Ipc(stream), "ipc".to_owned()))
    }
}

/// Binds a fresh path in the temporary directory, for `ipc://*`.
async fn bind_wildcard() -> io::Result<(IpcListener, Endpoint)> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut last_error = None;
    for _ in 0..16 {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "zmtp-{}-{}-{:08x}.sock",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            nanos
        );
        let path = std::env::temp_dir().join(name);
        if path.exists() {
            continue;
        }
        match bind_path(&path).await {
            Ok(listener) => return Ok((listener, Endpoint::Ipc(path))),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::AddrInUse,
            "cannot find a free path for ipc://* in the temporary directory",
        )
    }))
}

/// Binds a filesystem path, replacing a stale socket file (see [`IpcListener::bind`]).
async fn bind_path(path: &Path) -> io::Result<IpcListener> {
    let bind = |path: &Path| -> io::Result<IpcListener> {
        let listener = UnixListener::bind(path)?;
        Ok(IpcListener { listener, socket_file: SocketFile::record(path) })
    };
    let error = match bind(path) {
        Ok(listener) => return Ok(listener),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => e,
        Err(e) => return Err(e),
    };
    let shown = path.display();
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        // Gone since the bind failed: try once more.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return bind(path),
        Err(_) => return Err(error),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "the path exists and is not a socket; not removing it".to_owned(),
        ));
    }
    match UnixStream::connect(path).await {
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::debug!(path = %shown, "replacing stale ipc socket file");
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            bind(path)
        }
        // Connected, or the backlog is full: somebody is listening.
        Ok(_) => Err(live_socket()),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(live_socket()),
        Err(e) => Err(io::Error::new(e.kind(), format!("a socket file exists and probing it failed: {e}"))),
    }
}

/// The error for a path where a live listener already is (the caller's error names the endpoint).
fn live_socket() -> io::Error {
    io::Error::new(io::ErrorKind::AddrInUse, "another socket is listening on this path".to_owned())
}

/// Connects to the socket at `path` (`@name`: the abstract namespace). `*` is `InvalidInput`.
pub(crate) async fn connect(path: &Path) -> io::Result<Stream> {
    let stream = if let Some(name) = abstract_name(path) {
        UnixStream::connect(abstract_path(name)?).await?
    } else if is_wildcard(path) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot connect to ipc://*: * is bind-only"));
    } else {
        UnixStream::connect(path).await?
    };
    Ok(Stream::Ipc(stream))
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWrite;

    use super::super::tests::{exchange, TempDir};
    use super::super::{connect as connect_endpoint, Listener, TransportOptions};
    use super::*;

    async fn bind(path: &Path) -> io::Result<(Listener, Endpoint)> {
        Listener::bind(&Endpoint::Ipc(path.to_owned()), &TransportOptions::default()).await
    }

    async fn connect(endpoint: &Endpoint) -> io::Result<Stream> {
        connect_endpoint(endpoint, &TransportOptions::default()).await
    }

    #[tokio::test]
    async fn binds_connects_and_exchanges_bytes() {
        let dir = TempDir::new("ipc-exchange");
        let path = dir.path().join("s.sock");
        let (mut listener, bound) = bind(&path).await.unwrap();
        assert_eq!(bound, Endpoint::Ipc(path.clone()));
        assert_eq!(bound.to_string(), format!("ipc://{}", path.display()));
        let mut client = connect(&bound).await.unwrap();
        let (mut server, peer) = listener.accept().await.unwrap();
        assert_eq!(peer, "ipc");
        assert!(client.is_write_vectored() && server.is_write_vectored());
        exchange(&mut client, &mut server).await;
    }

    #[tokio::test]
    async fn replaces_stale_socket_file() {
        let dir = TempDir::new("ipc-stale");
        let path = dir.path().join("s.sock");
        // std does not unlink on drop, which leaves a socket file nobody listens on.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(std::fs::symlink_metadata(&path).unwrap().file_type().is_socket());

        let (mut listener, bound) = bind(&path).await.unwrap();
        let mut client = connect(&bound).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        exchange(&mut client, &mut server).await;
    }

    #[tokio::test]
    async fn does_not_steal_live_socket() {
        let dir = TempDir::new("ipc-live");
        let path = dir.path().join("s.sock");
        let live = std::os::unix::net::UnixListener::bind(&path).unwrap();

        let err = bind(&path).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
        assert!(err.to_string().contains("listening"), "{err}");
        // The live listener still owns the path.
        let _client = std::os::unix::net::UnixStream::connect(&path).unwrap();
        live.accept().unwrap();
    }

    #[tokio::test]
    async fn does_not_delete_regular_file() {
        let dir = TempDir::new("ipc-regular");
        let path = dir.path().join("not-a-socket");
        std::fs::write(&path, b"precious").unwrap();

        let err = bind(&path).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
        assert!(err.to_string().contains("not a socket"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    }

    #[tokio::test]
    async fn removes_socket_file_on_drop() {
        let dir = TempDir::new("ipc-drop");
        let path = dir.path().join("s.sock");
        let (listener, _) = bind(&path).await.unwrap();
        assert!(path.exists());
        drop(listener);
        assert!(std::fs::symlink_metadata(&path).is_err(), "socket file left behind");
    }

    #[tokio::test]
    async fn drop_leaves_a_successor_file_alone() {
        let dir = TempDir::new("ipc-successor");
        let path = dir.path().join("s.sock");
        let (listener, _) = bind(&path).await.unwrap();
        std::fs::remove_file(&path).unwrap();
        let successor = std::os::unix::net::UnixListener::bind(&path).unwrap();
        drop(listener);
        assert!(path.exists(), "dropped listener removed somebody else's socket file");
        drop(successor);
    }

    #[tokio::test]
    async fn binds_wildcard_in_temp_dir() {
        let (mut listener, bound) =
            Listener::bind(&"ipc://*".parse().unwrap(), &TransportOptions::default()).await.unwrap();
        let Endpoint::Ipc(path) = &bound else { panic!("not ipc: {bound}") };
        assert!(path.starts_with(std::env::temp_dir()), "{bound}");
        assert!(path.exists());
        let mut client = connect(&bound).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        exchange(&mut client, &mut server).await;
        drop(listener);
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn connect_rejects_wildcard_and_reports_missing_path() {
        let err = connect(&"ipc://*".parse().unwrap()).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        let dir = TempDir::new("ipc-missing");
        let err = connect(&Endpoint::Ipc(dir.path().join("nobody"))).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[tokio::test]
    async fn binds_abstract_namespace() {
        let endpoint: Endpoint = format!("ipc://@zmtp-test-{}-abstract", std::process::id()).parse().unwrap();
        let (mut listener, bound) = Listener::bind(&endpoint, &TransportOptions::default()).await.unwrap();
        assert_eq!(bound, endpoint);
        let err = Listener::bind(&endpoint, &TransportOptions::default()).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
        let mut client = connect(&bound).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        exchange(&mut client, &mut server).await;
        drop(listener);
        let err = connect(&bound).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
    }
}
