//! The `inproc://` transport: connections between sockets of this process through in-memory pipes.
//!
//! A process-global registry maps each bound name to its listener's queue of incoming connections. A
//! connection is a [`tokio::io::duplex`] pair: the connector keeps one half and the other is queued for
//! the listener's `accept`. No OS sockets are involved.
//!
//! As in libzmq ≥ 4, a connect may come before the bind: the connector registers a waiter under the
//! name and the bind hands every waiter its queue. A waiter whose connect future is dropped is
//! unregistered by a guard, so abandoned connects leave nothing behind.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use tokio::io::DuplexStream;
use tokio::sync::{mpsc, oneshot};

use super::Stream;

/// Bytes buffered in each direction of an inproc connection.
const PIPE_CAPACITY: usize = 256 * 1024;

/// Where a listener receives its connections: the far halves of new duplex pairs.
type Incoming = mpsc::UnboundedSender<DuplexStream>;

/// The registry's record for one name: its listener, if bound, and the connects waiting for one.
#[derive(Debug, Default)]
struct Slot {
    /// The bound listener's id and queue.
    listener: Option<(u64, Incoming)>,
    /// Pending connects by waiter id; the bind sends each one the listener's queue.
    waiters: Vec<(u64, oneshot::Sender<Incoming>)>,
}

impl Slot {
    /// Whether the slot records nothing and can be removed from the registry.
    fn is_empty(&self) -> bool {
        self.listener.is_none() && self.waiters.is_empty()
    }
}

/// Locks the process-global registry of inproc names.
///
/// A poisoned lock is recovered rather than propagated: every critical section only inserts, removes
/// or sends on channels (none of which panics), so the map is consistent even if a panic happened
/// while it was held.
fn registry() -> MutexGuard<'static, HashMap<String, Slot>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Slot>>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default).lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether `name` is bound now.
pub(crate) fn is_bound(name: &str) -> bool {
    registry().get(name).is_some_and(|slot| slot.listener.is_some())
}

/// A fresh id for a listener or a waiter.
fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A bound inproc name. Dropping it frees the name; connections already accepted keep working,
/// connections queued but not yet accepted are closed (their connectors read end-of-file).
#[derive(Debug)]
pub(crate) struct InprocListener {
    /// The bound name.
    name: String,
    /// This listener's id, so that drop only unregisters itself.
    id: u64,
    /// Incoming connections, queued by `connect`.
    incoming: mpsc::UnboundedReceiver<DuplexStream>,
}

impl InprocListener {
    /// Registers `name`, handing its queue to every connect already waiting for it. `AddrInUse` if the
    /// name is bound already.
    pub(crate) fn bind(name: &str) -> io::Result<InprocListener> {
        let mut registry = registry();
        let slot = registry.entry(name.to_owned()).or_default();
        if slot.listener.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("inproc://{name} is already bound"),
            ));
        }
        let (sender, incoming) = mpsc::unbounded_channel();
        for (_, waiter) in slot.waiters.drain(..) {
            // A waiter whose connect was dropped has gone; nothing to do for it.
            let _ = waiter.send(sender.clone());
        }
        let id = next_id();
        slot.listener = Some((id, sender));
        Ok(InprocListener { name: name.to_owned(), id, incoming })
    }

    /// Waits for the next connection; the peer is described as `"inproc"`. Cancel-safe, as
    /// [`mpsc::UnboundedReceiver::recv`] is.
    pub(crate) async fn accept(&mut self) -> io::Result<(Stream, String)> {
        match self.incoming.recv().await {
            Some(stream) => Ok((Stream::Inproc(stream), "inproc".to_owned())),
            // The registry keeps a sender for as long as this listener exists, so this cannot happen;
            // report it rather than panic.
            None => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                format!("inproc://{} is no longer registered", self.name),
            )),
        }
    }
}

impl Drop for InprocListener {
    /// Frees the name for a later bind.
    fn drop(&mut self) {
        let mut registry = registry();
        if let Some(slot) = registry.get_mut(&self.name) {
            if matches!(slot.listener, Some((id, _)) if id == self.id) {
                slot.listener = None;
            }
            if slot.is_empty() {
                registry.remove(&self.name);
            }
        }
    }
}

/// A registered waiter for a name nobody has bound yet; dropping it unregisters the waiter.
struct Waiter<'a> {
    /// The name waited for.
    name: &'a str,
    /// The waiter's id in the name's slot.
    id: u64,
    /// Receives the listener's queue when somebody binds the name.
    bound: oneshot::Receiver<Incoming>,
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        let mut registry = registry();
        if let Some(slot) = registry.get_mut(self.name) {
            slot.waiters.retain(|(id, _)| *id != self.id);
            if slot.is_empty() {
                registry.remove(self.name);
            }
        }
    }
}

/// Queues a new connection on `incoming`; returns the connector's half, or `None` if the listener is
/// gone.
fn connect_to(incoming: &Incoming) -> Option<Stream> {
    let (ours, theirs) = tokio::io::duplex(PIPE_CAPACITY);
    incoming.send(theirs).ok().map(|()| Stream::Inproc(ours))
}

/// Connects to the listener bound to `name`, waiting for a bind if there is none (also when the
/// listener that woke us was dropped before we could connect). Cancel-safe in the sense that
/// dropping the future unregisters its waiter.
pub(crate) async fn connect(name: &str) -> io::Result<Stream> {
    loop {
        let mut waiter = {
            let mut registry = registry();
            let slot = registry.entry(name.to_owned()).or_default();
            if let Some((_, incoming)) = &slot.listener {
                if let Some(stream) = connect_to(incoming) {
                    return Ok(stream);
                }
                // The listener's queue is closed but it is still registered (it is being dropped):
                // treat the name as unbound.
                slot.listener = None;
            }
            let (sender, bound) = oneshot::channel();
            let id = next_id();
            slot.waiters.push((id, sender));
            Waiter { name, id, bound }
        };
        match (&mut waiter.bound).await {
            Ok(incoming) => {
                if let Some(stream) = connect_to(&incoming) {
                    return Ok(stream);
                }
                // The listener was dropped before we got to it: wait for the next bind.
                tracing::debug!(name, "inproc listener went away before the connect; waiting again");
            }
            // Waiters are only dropped by their own guard or by a bind that sends first, so this
            // cannot happen; report it rather than loop or panic.
            Err(_) => {
                return Err(io::Error::other(format!("inproc://{name}: pending connect was abandoned")));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::super::tests::exchange;
    use super::*;

    fn is_registered(name: &str) -> bool {
        registry().contains_key(name)
    }

    /// Lets spawned tasks on the current-thread test runtime run until they block.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn bind_then_connect() {
        let mut listener = InprocListener::bind("inproc-test-bind-then-connect").unwrap();
        let mut client = connect("inproc-test-bind-then-connect").await.unwrap();
        let (mut server, peer) = listener.accept().await.unwrap();
        assert_eq!(peer, "inproc");
        exchange(&mut client, &mut server).await;
    }

    #[tokio::test]
    async fn connect_then_bind() {
        let name = "inproc-test-connect-then-bind";
        let pending = tokio::spawn(async move { connect(name).await });
        settle().await;
        assert!(!pending.is_finished(), "connect completed without a listener");
        assert!(is_registered(name));

        let mut listener = InprocListener::bind(name).unwrap();
        let mut client = pending.await.unwrap().unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        exchange(&mut client, &mut server).await;
    }

    #[tokio::test]
    async fn refuses_duplicate_bind() {
        let _listener = InprocListener::bind("inproc-test-duplicate").unwrap();
        let err = InprocListener::bind("inproc-test-duplicate").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert!(err.to_string().contains("inproc://inproc-test-duplicate"), "{err}");
    }

    #[tokio::test]
    async fn frees_name_on_drop() {
        let name = "inproc-test-freed";
        let listener = InprocListener::bind(name).unwrap();
        drop(listener);
        assert!(!is_registered(name));
        let mut listener = InprocListener::bind(name).unwrap();
        let mut client = connect(name).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        exchange(&mut client, &mut server).await;
    }

    #[tokio::test]
    async fn accepts_many_connections() {
        let name = "inproc-test-many";
        let mut listener = InprocListener::bind(name).unwrap();
        let mut clients = Vec::new();
        for i in 0..100u32 {
            let mut client = connect(name).await.unwrap();
            client.write_all(&i.to_be_bytes()).await.unwrap();
            clients.push(client);
        }
        for i in 0..100u32 {
            let (mut server, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4];
            server.read_exact(&mut buf).await.unwrap();
            assert_eq!(u32::from_be_bytes(buf), i, "connections are accepted in order");
            server.write_all(&buf).await.unwrap();
        }
        for (i, client) in clients.iter_mut().enumerate() {
            let mut buf = [0u8; 4];
            client.read_exact(&mut buf).await.unwrap();
            assert_eq!(u32::from_be_bytes(buf) as usize, i);
        }
    }

    #[tokio::test]
    async fn dropped_connect_leaves_no_registration() {
        let name = "inproc-test-dropped-connect";
        let result = tokio::time::timeout(Duration::from_millis(10), connect(name)).await;
        assert!(result.is_err(), "connect completed without a listener");
        assert!(!is_registered(name), "abandoned connect left a registration");

        // An aborted task unregisters its waiter too.
        let pending = tokio::spawn(async move { connect(name).await });
        settle().await;
        pending.abort();
        let _ = pending.await;
        assert!(!is_registered(name));
    }

    #[tokio::test]
    async fn pending_connect_survives_listener_dropped_before_it_connects() {
        let name = "inproc-test-listener-gone";
        let pending = tokio::spawn(async move { connect(name).await });
        settle().await;
        // Bind (waking the waiter) and drop before the waiter runs.
        drop(InprocListener::bind(name).unwrap());
        settle().await;
        assert!(!pending.is_finished(), "connect should wait for the next bind");

        let mut listener = InprocListener::bind(name).unwrap();
        let mut client = pending.await.unwrap().unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        exchange(&mut client, &mut server).await;
    }

    #[tokio::test]
    async fn accepted_connections_outlive_the_listener() {
        let name = "inproc-test-outlive";
        let mut listener = InprocListener::bind(name).unwrap();
        let mut client = connect(name).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let mut queued = connect(name).await.unwrap();
        drop(listener);
        assert!(!is_registered(name));
        exchange(&mut client, &mut server).await;
        // A connection queued but never accepted is closed with the listener.
        let mut buf = [0u8; 1];
        assert_eq!(queued.read(&mut buf).await.unwrap(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_connects_and_binds() {
        let name = "inproc-test-concurrent";
        let connects: Vec<_> = (0..50).map(|_| tokio::spawn(async move { connect(name).await })).collect();
        let mut listener = InprocListener::bind(name).unwrap();
        for handle in connects {
            handle.await.unwrap().unwrap();
            listener.accept().await.unwrap();
        }
    }
}
