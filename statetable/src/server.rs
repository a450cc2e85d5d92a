//! [`Server`]: the consumer side's socket (SONiC's `ZmqServer`), which receives messages and hands
//! each to the [`Handler`] registered for its (database, table).
//!
//! By default a PULL that binds, with SONiC's settings: RCVHWM 10,000 and TCP keepalive (idle 5 s,
//! interval 1 s, 5 probes). Messages of 16 MiB or more are refused as SONiC refuses them; but where
//! SONiC's receive thread throws (and stops receiving for everyone), here a message of exactly
//! 16 MiB is counted as malformed and skipped, a peer that sends a larger one loses its own
//! connection (the socket's `max_msg_size`, before the message is assembled), and everyone else
//! carries on.
//!
//! With [`ServerOptions::lazy_bind`] the server binds only when [`Server::bind`] is called, so that
//! the application can register every handler first and no early message is dropped as "unknown
//! table" (SONiC's `lazyBind`). Messages for a (database, table) with no handler are counted in
//! [`ServerStats::unknown_table`] and logged.
//!
//! In synchronous mode ([`ServerOptions::sync`]) it is a REP: after each message the server waits for
//! the application's reply ([`Server::reply`]) before it receives the next, as SONiC's does. A
//! message it cannot hand to anyone (malformed, or for a table with no handler) is answered at once
//! with an empty batch, so the producer's wait ends.
//!
//! A handler that is full ([`Handler::handle`] gives the batch back) makes the server stop reading
//! until [`Handler::ready`] resolves: the backlog then stays in the socket's queues (RCVHWM, then the
//! producers' SNDHWM and their retries) rather than growing memory.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Notify;
use zmtp::{Options, Socket, SocketEventKind, SocketType};

use crate::client::WATERMARK;
use crate::error::{Error, Result};
use crate::wire::{self, Batch, Operation, MAX_MESSAGE_BYTES};

/// Receives the batches of one (database, table), in the order they arrived. Called from the
/// server's receive task: it must not block (queue the batch and return).
pub trait Handler: Send + Sync + 'static {
    /// Takes `batch`, or gives it back when full; the server then waits for [`Handler::ready`] and
    /// offers it again (nothing else is received meanwhile).
    ///
    /// # Errors
    /// `Err(batch)`: full, try again once [`Handler::ready`] resolves.
    fn handle(&self, batch: Batch) -> Result<(), Batch>;

    /// Resolves once the handler may have room again. The default is at once.
    fn ready(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(std::future::ready(()))
    }
}

/// How a [`Server`] is set up. `Default` is SONiC's.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Synchronous (REQ/REP) mode: one producer, each message answered by [`Server::reply`].
    pub sync: bool,
    /// Bind only when [`Server::bind`] is called (SONiC's `lazyBind`).
    pub lazy_bind: bool,
    /// Messages queued in the socket before producers are held back (SONiC: 10,000).
    pub recv_hwm: usize,
    /// TCP keepalive idle time, interval and probe count (SONiC: 5 s, 1 s, 5); `None` turns it off.
    pub keepalive: Option<(Duration, Duration, u32)>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            sync: false,
            lazy_bind: false,
            recv_hwm: WATERMARK,
            keepalive: Some((Duration::from_secs(5), Duration::from_secs(1), 5)),
        }
    }
}

/// What a server has received, since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Messages received.
    pub messages: u64,
    /// Operations handed to handlers (counted as the hand-over starts; a full handler may still be
    /// holding the server back).
    pub operations: u64,
    /// Messages refused as malformed (see [`crate::wire::DecodeError`]).
    pub malformed: u64,
    /// Messages for a (database, table) with no handler, dropped.
    pub unknown_table: u64,
    /// Connections ended by a protocol error (a message larger than 16 MiB among them).
    pub peers_dropped: u64,
}

#[derive(Default)]
struct Counters {
    messages: AtomicU64,
    operations: AtomicU64,
    malformed: AtomicU64,
    unknown_table: AtomicU64,
    peers_dropped: AtomicU64,
}

type Tables = HashMap<Bytes, HashMap<Bytes, Arc<dyn Handler>>>;

struct Shared {
    endpoint: String,
    options: ServerOptions,
    handlers: RwLock<Tables>,
    fallback: RwLock<Option<Arc<dyn Handler>>>,
    socket: Mutex<Option<Socket>>,
    bound: Mutex<Option<String>>,
    counters: Counters,
    /// Synchronous mode: the application replied to the current request.
    replied: Notify,
}

impl Shared {
    fn handler(&self, db: &[u8], table: &[u8]) -> Option<Arc<dyn Handler>> {
        let found = match self.handlers.read() {
            Ok(h) => h.get(db).and_then(|t| t.get(table)).cloned(),
            Err(p) => p.into_inner().get(db).and_then(|t| t.get(table)).cloned(),
        };
        found.or_else(|| match self.fallback.read() {
            Ok(f) => f.clone(),
            Err(p) => p.into_inner().clone(),
        })
    }

    fn socket(&self) -> Option<Socket> {
        match self.socket.lock() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

/// The consumer side's socket. See the [module documentation](self). Dropping it stops receiving
/// and closes the socket.
pub struct Server {
    shared: Arc<Shared>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("endpoint", &self.shared.endpoint)
            .field("sync", &self.shared.options.sync)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let tasks = match self.tasks.lock() {
            Ok(mut t) => std::mem::take(&mut *t),
            Err(p) => std::mem::take(&mut *p.into_inner()),
        };
        for t in tasks {
            t.abort();
        }
        if let Ok(mut s) = self.shared.socket.lock() {
            s.take();
        }
    }
}

/// Lets a handler remove itself when it is dropped, without keeping the server alive.
pub(crate) struct Registration {
    shared: std::sync::Weak<Shared>,
}

impl Registration {
    pub(crate) fn remove(&self, db: &[u8], table: &[u8]) {
        if let Some(shared) = self.shared.upgrade() {
            remove(&shared, db, table);
        }
    }
}

fn remove(shared: &Shared, db: &[u8], table: &[u8]) {
    let mut h = match shared.handlers.write() {
        Ok(h) => h,
        Err(p) => p.into_inner(),
    };
    if let Some(tables) = h.get_mut(db) {
        tables.remove(table);
        if tables.is_empty() {
            h.remove(db);
        }
    }
}

/// Sends replies in synchronous mode; a clone of the server's reply side for tasks that answer after
/// doing their work (see [`Server::replier`]).
#[derive(Clone)]
pub struct Replier {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Replier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replier").field("endpoint", &self.shared.endpoint).finish()
    }
}

impl Replier {
    /// Replies to the request being handled with `ops` on `table` of `db` (SONiC's
    /// `ZmqServer::sendMsg`), and lets the server receive the next one.
    ///
    /// # Errors
    /// [`Error::NotSynchronous`] in PULL mode; [`Error::NoRequest`] with no request to answer (also
    /// before [`Server::bind`]); [`Error::Encode`] for a reply of 16 MiB or more.
    pub fn reply(&self, db: &[u8], table: &[u8], ops: &[Operation]) -> Result<()> {
        if !self.shared.options.sync {
            return Err(Error::NotSynchronous("reply"));
        }
        let message = wire::encode(db, table, ops)?;
        let Some(socket) = self.shared.socket() else { return Err(Error::NoRequest) };
        match socket.try_send(message) {
            Ok(()) => {
                self.shared.replied.notify_one();
                Ok(())
            }
            Err(e) => match e.error {
                zmtp::Error::InvalidState(_) => Err(Error::NoRequest),
                zmtp::Error::Closed => Err(Error::Closed),
                other => Err(Error::Socket(other)),
            },
        }
    }
}

impl Server {
    /// A server for `endpoint` (`tcp://*:8100`, `tcp://127.0.0.1:*`, `ipc://…`), bound now unless
    /// [`ServerOptions::lazy_bind`]. Must run inside a tokio runtime.
    ///
    /// # Errors
    /// [`Error::Socket`] if binding fails (address in use, malformed endpoint).
    pub async fn new(endpoint: &str, options: ServerOptions) -> Result<Server> {
        let lazy = options.lazy_bind;
        let server = Server {
            shared: Arc::new(Shared {
                endpoint: endpoint.to_owned(),
                options,
                handlers: RwLock::new(HashMap::new()),
                fallback: RwLock::new(None),
                socket: Mutex::new(None),
                bound: Mutex::new(None),
                counters: Counters::default(),
                replied: Notify::new(),
            }),
            tasks: Mutex::new(Vec::new()),
        };
        if !lazy {
            server.bind().await?;
        }
        Ok(server)
    }

    /// [`Server::new`] for programs without a runtime: the socket runs on a background runtime.
    ///
    /// # Errors
    /// As [`Server::new`]; [`Error::BlockingInAsync`] inside an async task.
    pub fn new_blocking(endpoint: &str, options: ServerOptions) -> Result<Server> {
        crate::rt::block_on(Server::new(endpoint, options))?
    }

    /// Binds (once) and starts receiving; the endpoint actually bound (a `*` port resolved).
    ///
    /// # Errors
    /// [`Error::AlreadyBound`] the second time; [`Error::Socket`] if binding fails.
    pub async fn bind(&self) -> Result<String> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Socket(zmtp::Error::NoRuntime));
        }
        if self.shared.socket().is_some() {
            return Err(Error::AlreadyBound(self.shared.endpoint.clone()));
        }
        let o = &self.shared.options;
        // SONiC's receive buffer is 16 MiB and a message that fills it is refused: a larger one
        // ends that peer's connection rather than being assembled.
        let mut options = Options { max_msg_size: Some(MAX_MESSAGE_BYTES as u64), ..Options::default() };
        let kind = if o.sync {
            SocketType::Rep
        } else {
            options.recv_hwm = o.recv_hwm;
            if let Some((idle, interval, count)) = o.keepalive {
                options.tcp_keepalive = Some(true);
                options.tcp_keepalive_idle = Some(idle);
                options.tcp_keepalive_interval = Some(interval);
                options.tcp_keepalive_count = Some(count);
            }
            SocketType::Pull
        };
        let socket = Socket::with_options(kind, options)?;
        let monitor = socket.monitor();
        let bound = socket.bind(&self.shared.endpoint).await?;
        {
            let mut slot = match self.shared.socket.lock() {
                Ok(s) => s,
                Err(p) => p.into_inner(),
            };
            if slot.is_some() {
                return Err(Error::AlreadyBound(self.shared.endpoint.clone()));
            }
            *slot = Some(socket.clone());
        }
        tracing::info!(endpoint = %bound, sync = o.sync, "consumer bound");
        match self.shared.bound.lock() {
            Ok(mut b) => *b = Some(bound.clone()),
            Err(p) => *p.into_inner() = Some(bound.clone()),
        }
        let watch = tokio::spawn(watch_peers(monitor, Arc::clone(&self.shared)));
        let shared = Arc::clone(&self.shared);
        let receive = if o.sync {
            tokio::spawn(receive_sync(socket, shared))
        } else {
            tokio::spawn(receive(socket, shared))
        };
        match self.tasks.lock() {
            Ok(mut t) => t.extend([watch, receive]),
            Err(p) => p.into_inner().extend([watch, receive]),
        }
        Ok(bound)
    }

    /// [`Server::bind`] for programs without a runtime.
    ///
    /// # Errors
    /// As [`Server::bind`]; [`Error::BlockingInAsync`] inside an async task.
    pub fn bind_blocking(&self) -> Result<String> {
        crate::rt::block_on(self.bind())?
    }

    /// Hands the messages for `table` of `db` to `handler` from now on (replacing any before).
    pub fn register(&self, db: impl Into<Bytes>, table: impl Into<Bytes>, handler: Arc<dyn Handler>) {
        let (db, table) = (db.into(), table.into());
        tracing::debug!(db = %String::from_utf8_lossy(&db), table = %String::from_utf8_lossy(&table), "handler registered");
        match self.shared.handlers.write() {
            Ok(mut h) => h.entry(db).or_default().insert(table, handler),
            Err(p) => p.into_inner().entry(db).or_default().insert(table, handler),
        };
    }

    /// Hands the messages of every (database, table) with no handler of its own to `handler`
    /// (a write-through of everything, as `statetable-consumer` does).
    pub fn register_fallback(&self, handler: Arc<dyn Handler>) {
        match self.shared.fallback.write() {
            Ok(mut f) => *f = Some(handler),
            Err(p) => *p.into_inner() = Some(handler),
        }
    }

    /// Stops handing messages for `table` of `db` to its handler; they count as unknown from now on.
    /// A batch already being handed over may still arrive.
    pub fn remove(&self, db: &[u8], table: &[u8]) {
        remove(&self.shared, db, table);
    }

    pub(crate) fn registration(&self) -> Registration {
        Registration { shared: Arc::downgrade(&self.shared) }
    }

    /// Synchronous mode: replies to the request being handled. See [`Replier::reply`].
    ///
    /// # Errors
    /// As [`Replier::reply`].
    pub fn reply(&self, db: &[u8], table: &[u8], ops: &[Operation]) -> Result<()> {
        self.replier().reply(db, table, ops)
    }

    /// A handle that sends replies, for a task that answers after it has done its work.
    pub fn replier(&self) -> Replier {
        Replier { shared: Arc::clone(&self.shared) }
    }

    /// The endpoint as given.
    pub fn endpoint(&self) -> &str {
        &self.shared.endpoint
    }

    /// The endpoint actually bound (a `*` port resolved); `None` before [`Server::bind`].
    pub fn bound_endpoint(&self) -> Option<String> {
        match self.shared.bound.lock() {
            Ok(b) => b.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// What the server has received so far.
    pub fn stats(&self) -> ServerStats {
        let c = &self.shared.counters;
        ServerStats {
            messages: c.messages.load(Ordering::Relaxed),
            operations: c.operations.load(Ordering::Relaxed),
            malformed: c.malformed.load(Ordering::Relaxed),
            unknown_table: c.unknown_table.load(Ordering::Relaxed),
            peers_dropped: c.peers_dropped.load(Ordering::Relaxed),
        }
    }

    /// Stops receiving and closes the socket, waiting for its connections to close.
    pub async fn close(self) {
        let socket = match self.shared.socket.lock() {
            Ok(mut s) => s.take(),
            Err(p) => p.into_inner().take(),
        };
        drop(self);
        if let Some(s) = socket {
            s.close().await;
        }
    }
}

/// Logs no more than once a second per kind, with how many were not logged.
struct LogLimit {
    last: Option<Instant>,
    suppressed: u64,
}

impl LogLimit {
    fn new() -> Self {
        LogLimit { last: None, suppressed: 0 }
    }

    /// Whether to log now, and how many were suppressed since the last one.
    fn check(&mut self) -> Option<u64> {
        let now = Instant::now();
        match self.last {
            Some(t) if now.duration_since(t) < Duration::from_secs(1) => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

struct Dispatch {
    shared: Arc<Shared>,
    malformed_log: LogLimit,
    unknown_log: LogLimit,
}

enum Outcome {
    Handled,
    Malformed,
    Unknown(Bytes, Bytes),
}

impl Dispatch {
    async fn message(&mut self, msg: &zmtp::Msg) -> Outcome {
        let c = &self.shared.counters;
        c.messages.fetch_add(1, Ordering::Relaxed);
        let batch = match wire::decode_msg(msg) {
            Ok(b) => b,
            Err(error) => {
                c.malformed.fetch_add(1, Ordering::Relaxed);
                if let Some(suppressed) = self.malformed_log.check() {
                    tracing::warn!(endpoint = %self.shared.endpoint, %error, suppressed, "malformed message dropped");
                }
                return Outcome::Malformed;
            }
        };
        let Some(handler) = self.shared.handler(&batch.db, &batch.table) else {
            c.unknown_table.fetch_add(1, Ordering::Relaxed);
            if let Some(suppressed) = self.unknown_log.check() {
                tracing::warn!(
                    db = %String::from_utf8_lossy(&batch.db),
                    table = %String::from_utf8_lossy(&batch.table),
                    operations = batch.ops.len(),
                    suppressed,
                    "no handler for table; message dropped"
                );
            }
            return Outcome::Unknown(batch.db, batch.table);
        };
        // Counted before the hand-over, so that an application that has its operations sees
        // them counted.
        c.operations.fetch_add(batch.ops.len() as u64, Ordering::Relaxed);
        let mut batch = batch;
        loop {
            match handler.handle(batch) {
                Ok(()) => break,
                Err(back) => {
                    batch = back;
                    handler.ready().await;
                }
            }
        }
        Outcome::Handled
    }
}

/// PULL: receives in batches (one lock per batch of messages) and dispatches each in order.
async fn receive(socket: Socket, shared: Arc<Shared>) {
    let mut d = Dispatch { shared, malformed_log: LogLimit::new(), unknown_log: LogLimit::new() };
    let mut queue = VecDeque::new();
    loop {
        match socket.recv_many(&mut queue, 256).await {
            Ok(_) => {}
            Err(zmtp::Error::Closed) => break,
            Err(error) => {
                tracing::error!(%error, "receive failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        }
        while let Some(msg) = queue.pop_front() {
            d.message(&msg).await;
        }
    }
}

/// REP: one request at a time; the next is received once the application replied.
async fn receive_sync(socket: Socket, shared: Arc<Shared>) {
    let mut d = Dispatch {
        shared: Arc::clone(&shared),
        malformed_log: LogLimit::new(),
        unknown_log: LogLimit::new(),
    };
    loop {
        let msg = match socket.recv().await {
            Ok(m) => m,
            Err(zmtp::Error::Closed) => break,
            Err(error) => {
                tracing::error!(%error, "receive failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let empty = match d.message(&msg).await {
            Outcome::Handled => None,
            Outcome::Malformed => Some((Bytes::new(), Bytes::new())),
            Outcome::Unknown(db, table) => Some((db, table)),
        };
        if let Some((db, table)) = empty {
            // Nobody will answer this one: answer it now, so the producer's wait ends.
            let reply = wire::encode(&db, &table, &[]).unwrap_or_default();
            if let Err(e) = socket.try_send(reply) {
                tracing::warn!(error = %e.error, "cannot answer an unhandled request");
            }
            continue;
        }
        shared.replied.notified().await;
    }
}

/// Logs peers coming and going, and counts those dropped for protocol errors.
async fn watch_peers(mut monitor: zmtp::Monitor, shared: Arc<Shared>) {
    while let Some(event) = monitor.recv().await {
        match event.kind {
            SocketEventKind::Accepted(peer) => tracing::info!(%peer, "producer connected"),
            SocketEventKind::Disconnected(reason) => {
                let peer = event.peer.as_deref().unwrap_or("?").to_owned();
                if !reason.is_ordinary() && !matches!(reason, zmtp::DisconnectReason::Io { .. }) {
                    shared.counters.peers_dropped.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%peer, ?reason, "producer dropped");
                } else {
                    tracing::info!(%peer, "producer disconnected");
                }
            }
            SocketEventKind::MonitorStopped => break,
            _ => {}
        }
    }
}
