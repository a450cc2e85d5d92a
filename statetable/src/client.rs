//! [`Client`]: the producer side's socket (SONiC's `ZmqClient`).
//!
//! By default a PUSH that connects, with SONiC's settings: SNDHWM 10,000, LINGER 0 and TCP keepalive
//! (idle 5 s, interval 1 s, 5 probes: a consumer that lost power is noticed within about 10 s).
//! A send never blocks on the socket: when the queue is full it backs off 2ⁿ × 10 ms (20 ms, 40 ms,
//! … 20.48 s) for up to 10 retries, then fails with [`Error::QueueFull`], as SONiC's `sendMsg` does.
//!
//! In synchronous mode ([`ClientOptions::sync_timeout`]) it is a REQ: each message waits for the
//! consumer's acknowledgement ([`Client::wait`]). Unlike SONiC's, whose REQ is stuck in its
//! send-nothing state after a reply that never came, a [`Client::wait`] that times out replaces the
//! socket (the Guide's "lazy pirate"), so the next send works; a send while a reply is awaited is
//! [`Error::AwaitingReply`], as in SONiC.
//!
//! A `Client` is cheap to clone and safe to share between tasks and threads: every clone sends on the
//! same socket.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use zmtp::{Msg, Options, Socket, SocketEventKind, SocketType};

use crate::error::{Error, Result};
use crate::wire::{self, Batch, Operation};

/// SONiC's `MQ_WATERMARK`: the send and receive high-water marks.
pub const WATERMARK: usize = 10_000;
/// SONiC's `MQ_MAX_RETRY`.
pub const MAX_RETRIES: u32 = 10;

/// How a [`Client`] is set up. `Default` is SONiC's.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Synchronous (REQ/REP) mode with this reply timeout for [`Client::wait`]; `None` (the default)
    /// is PUSH. SONiC: `ZmqClient(endpoint, waitTimeMs)`.
    pub sync_timeout: Option<Duration>,
    /// Messages queued before a send has to retry (SONiC: 10,000).
    pub send_hwm: usize,
    /// Retries after the first attempt while the queue is full (SONiC: 10).
    pub retries: u32,
    /// The first back-off is twice this; each further one doubles (SONiC: 10 ms, so 20 ms … 20.48 s).
    pub retry_base: Duration,
    /// How long unsent messages are kept once the client is dropped (SONiC: 0).
    pub linger: Duration,
    /// TCP keepalive idle time, interval and probe count (SONiC: 5 s, 1 s, 5); `None` turns it off.
    pub keepalive: Option<(Duration, Duration, u32)>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            sync_timeout: None,
            send_hwm: WATERMARK,
            retries: MAX_RETRIES,
            retry_base: Duration::from_millis(10),
            linger: Duration::ZERO,
            keepalive: Some((Duration::from_secs(5), Duration::from_secs(1), 5)),
        }
    }
}

struct Inner {
    endpoint: String,
    options: ClientOptions,
    /// The socket; replaced after a synchronous wait times out.
    socket: Mutex<Socket>,
    connected: Arc<AtomicBool>,
    /// Synchronous mode: a message was sent and its reply not yet received.
    awaiting: AtomicBool,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint)
            .field("sync", &self.options.sync_timeout.is_some())
            .field("connected", &self.connected.load(Ordering::Relaxed))
            .finish()
    }
}

/// The producer side's socket. See the [module documentation](self).
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

fn socket_options(options: &ClientOptions) -> Options {
    let mut o = Options { linger: Some(options.linger), ..Options::default() };
    if options.sync_timeout.is_none() {
        o.send_hwm = options.send_hwm;
        if let Some((idle, interval, count)) = options.keepalive {
            o.tcp_keepalive = Some(true);
            o.tcp_keepalive_idle = Some(idle);
            o.tcp_keepalive_interval = Some(interval);
            o.tcp_keepalive_count = Some(count);
        }
    }
    o
}

/// Makes the socket and connects it; a task follows its monitor to know whether a consumer is
/// connected (for [`Error::QueueFull`]'s message and [`Client::is_connected`]) and to log when one
/// comes and goes.
fn open(endpoint: &str, options: &ClientOptions, connected: &Arc<AtomicBool>) -> Result<Socket> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(Error::Socket(zmtp::Error::NoRuntime));
    }
    let kind = if options.sync_timeout.is_some() { SocketType::Req } else { SocketType::Push };
    let socket = Socket::with_options(kind, socket_options(options))?;
    let mut monitor = socket.monitor();
    let flag = Arc::clone(connected);
    let ep = endpoint.to_owned();
    tokio::spawn(async move {
        while let Some(event) = monitor.recv().await {
            match event.kind {
                SocketEventKind::HandshakeSucceeded => {
                    flag.store(true, Ordering::Relaxed);
                    tracing::info!(endpoint = %ep, "connected to consumer");
                }
                SocketEventKind::Disconnected(reason) => {
                    flag.store(false, Ordering::Relaxed);
                    if reason == zmtp::DisconnectReason::Local {
                        tracing::debug!(endpoint = %ep, "connection closed");
                    } else {
                        tracing::warn!(endpoint = %ep, reason = ?reason, "consumer connection lost; reconnecting");
                    }
                }
                SocketEventKind::MonitorStopped => break,
                _ => {}
            }
        }
    });
    socket.connect(endpoint)?;
    Ok(socket)
}

enum Attempt {
    Sent,
    Full(Msg),
}

impl Client {
    /// Connects to the consumer at `endpoint` (`tcp://host:port`, `ipc://…`, `inproc://…`). Must run
    /// inside a tokio runtime; the consumer need not be up yet (the socket reconnects).
    ///
    /// # Errors
    /// [`Error::Socket`] for a malformed endpoint or an invalid option.
    pub fn connect(endpoint: &str, options: ClientOptions) -> Result<Client> {
        let connected = Arc::new(AtomicBool::new(false));
        let socket = open(endpoint, &options, &connected)?;
        tracing::info!(endpoint, sync = options.sync_timeout.is_some(), "producer connecting");
        Ok(Client {
            inner: Arc::new(Inner {
                endpoint: endpoint.to_owned(),
                options,
                socket: Mutex::new(socket),
                connected,
                awaiting: AtomicBool::new(false),
            }),
        })
    }

    /// [`Client::connect`] for programs without a runtime: the socket runs on a background runtime.
    ///
    /// # Errors
    /// As [`Client::connect`]; [`Error::BlockingInAsync`] inside an async task.
    pub fn connect_blocking(endpoint: &str, options: ClientOptions) -> Result<Client> {
        crate::rt::block_on(async { Client::connect(endpoint, options) })?
    }

    /// The endpoint this client connects to.
    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    /// Whether a consumer is connected now (SONiC's `isConnected` says only that `connect` was
    /// called; this follows the connection).
    pub fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::Relaxed)
    }

    /// Whether this client is in synchronous (REQ/REP) mode.
    pub fn is_synchronous(&self) -> bool {
        self.inner.options.sync_timeout.is_some()
    }

    fn socket(&self) -> Socket {
        match self.inner.socket.lock() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn attempt(&self, msg: Msg) -> Result<Attempt> {
        let sync = self.is_synchronous();
        if sync && self.inner.awaiting.load(Ordering::Acquire) {
            return Err(Error::AwaitingReply);
        }
        match self.socket().try_send(msg) {
            Ok(()) => {
                if sync {
                    self.inner.awaiting.store(true, Ordering::Release);
                }
                Ok(Attempt::Sent)
            }
            Err(e) => match e.error {
                zmtp::Error::WouldBlock => Ok(Attempt::Full(e.msg)),
                zmtp::Error::InvalidState(_) => Err(Error::AwaitingReply),
                zmtp::Error::Closed => Err(Error::Closed),
                other => Err(Error::Socket(other)),
            },
        }
    }

    fn backoff(&self, retry: u32) -> Duration {
        self.inner.options.retry_base.saturating_mul(2u32.saturating_pow(retry.min(30)))
    }

    fn full(&self, attempts: u32, waited: Duration) -> Error {
        let e = Error::QueueFull {
            endpoint: self.inner.endpoint.clone(),
            attempts,
            waited,
            connected: self.is_connected(),
        };
        tracing::error!(error = %e, "message dropped");
        e
    }

    /// One attempt of a send: `None` when sent, the message and the pause before the next attempt
    /// when the queue is full, the error when there is none left (or the socket refused).
    fn step(&self, msg: Msg, retry: u32, waited: Duration) -> Result<Option<(Msg, Duration)>> {
        let msg = match self.attempt(msg)? {
            Attempt::Sent => return Ok(None),
            Attempt::Full(m) => m,
        };
        if retry >= self.inner.options.retries {
            return Err(self.full(retry + 1, waited));
        }
        let pause = self.backoff(retry + 1);
        // A full queue for a moment is ordinary flow control under load (the first pauses end as
        // soon as there is room); one that stays full for 60 ms and more is worth a warning.
        if retry >= 2 {
            tracing::warn!(endpoint = %self.inner.endpoint, retry = retry + 1, pause = ?pause, "send queue still full; retrying");
        } else {
            tracing::debug!(endpoint = %self.inner.endpoint, retry = retry + 1, pause = ?pause, "send queue full; waiting for room");
        }
        Ok(Some((msg, pause)))
    }

    /// Sends one encoded message (see [`crate::wire`]), retrying while the queue is full.
    ///
    /// The back-off is SONiC's (2ⁿ × `retry_base`, then [`Error::QueueFull`]), but each pause is a
    /// wait for room rather than a blind sleep: the message goes as soon as the queue has room. (A
    /// blind 20 ms sleep left the consumer idle: measured, one SET per message, 327k–333k SETs/s
    /// against 457k–478k with a 100 µs first pause; docs/bench/2026-12-07-statetable.md.)
    ///
    /// # Errors
    /// [`Error::QueueFull`] after the last retry; [`Error::AwaitingReply`] in synchronous mode before
    /// the previous reply; [`Error::Closed`] or [`Error::Socket`] if the socket failed.
    pub async fn send_raw(&self, message: Bytes) -> Result<()> {
        let (mut msg, mut waited) = (Msg::from(message), Duration::ZERO);
        for retry in 0.. {
            let Some((m, pause)) = self.step(msg, retry, waited)? else { return Ok(()) };
            // A REQ waits for its reply, not for room: only PUSH waits here.
            if !self.is_synchronous() {
                let socket = self.socket();
                let started = tokio::time::Instant::now();
                // A send that times out is dropped unsent (zmtp's `send` is cancel-safe in that
                // sense), so the clone is the message still to send.
                match tokio::time::timeout(pause, socket.send(m.clone())).await {
                    Ok(Ok(())) => return Ok(()),
                    Ok(Err(e)) => {
                        return Err(match e.error {
                            zmtp::Error::Closed => Error::Closed,
                            other => Error::Socket(other),
                        })
                    }
                    Err(_) => {}
                }
                (msg, waited) = (m, waited + started.elapsed());
                continue;
            }
            tokio::time::sleep(pause).await;
            (msg, waited) = (m, waited + pause);
        }
        Err(Error::Closed)
    }

    /// [`Client::send_raw`] from a thread: backs off with `std::thread::sleep`. Usable from any
    /// thread, including (unlike the other blocking methods) inside a runtime's `spawn_blocking`.
    ///
    /// # Errors
    /// As [`Client::send_raw`].
    pub fn send_raw_blocking(&self, message: Bytes) -> Result<()> {
        let mut msg = Msg::from(message.clone());
        match self.attempt(msg)? {
            Attempt::Sent => return Ok(()),
            Attempt::Full(m) => msg = m,
        }
        // The queue is full. Outside a runtime, wait for room as `send_raw` does; on a runtime's
        // blocking thread (where `block_on` is refused), back off with sleeps.
        if tokio::runtime::Handle::try_current().is_err() {
            if let Ok(result) = crate::rt::block_on(self.send_raw(message)) {
                return result;
            }
        }
        let mut waited = Duration::ZERO;
        for retry in 0.. {
            let Some((m, pause)) = self.step(msg, retry, waited)? else { return Ok(()) };
            std::thread::sleep(pause);
            (msg, waited) = (m, waited + pause);
        }
        Err(Error::Closed)
    }

    /// Sends `ops` on `table` of `db` as one message (SONiC's `sendMsg`).
    ///
    /// # Errors
    /// [`Error::Encode`] if the batch reaches 16 MiB (nothing is sent); otherwise as
    /// [`Client::send_raw`].
    pub async fn send(&self, db: &[u8], table: &[u8], ops: &[Operation]) -> Result<()> {
        self.send_raw(wire::encode(db, table, ops)?).await
    }

    /// [`Client::send`] from a thread.
    ///
    /// # Errors
    /// As [`Client::send`].
    pub fn send_blocking(&self, db: &[u8], table: &[u8], ops: &[Operation]) -> Result<()> {
        self.send_raw_blocking(wire::encode(db, table, ops)?)
    }

    /// Synchronous mode: waits up to the configured timeout for the consumer's reply to the last
    /// message and returns it; `Ok(None)` on timeout, after which the socket is replaced so that the
    /// next send can go (the unanswered message may or may not have been applied).
    ///
    /// # Errors
    /// [`Error::NotSynchronous`] in PUSH mode; [`Error::Decode`] for a malformed reply;
    /// [`Error::Socket`] if the socket failed.
    pub async fn wait(&self) -> Result<Option<Batch>> {
        let Some(timeout) = self.inner.options.sync_timeout else {
            return Err(Error::NotSynchronous("wait"));
        };
        let socket = self.socket();
        match tokio::time::timeout(timeout, socket.recv()).await {
            Ok(Ok(msg)) => {
                self.inner.awaiting.store(false, Ordering::Release);
                Ok(Some(wire::decode_msg(&msg)?))
            }
            Ok(Err(e)) => Err(e.into()),
            Err(_) => {
                tracing::error!(endpoint = %self.inner.endpoint, ?timeout, "no reply from consumer; reconnecting");
                let fresh = open(&self.inner.endpoint, &self.inner.options, &self.inner.connected)?;
                let old = match self.inner.socket.lock() {
                    Ok(mut s) => std::mem::replace(&mut *s, fresh),
                    Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), fresh),
                };
                drop(old);
                self.inner.awaiting.store(false, Ordering::Release);
                Ok(None)
            }
        }
    }

    /// Closes the socket (every clone's): sends what is queued for up to the linger time, then
    /// returns once the connection is closed.
    pub async fn close(&self) {
        self.socket().close().await;
    }

    /// [`Client::wait`] from a thread without a runtime.
    ///
    /// # Errors
    /// As [`Client::wait`]; [`Error::BlockingInAsync`] inside an async task.
    pub fn wait_blocking(&self) -> Result<Option<Batch>> {
        crate::rt::block_on(self.wait())?
    }
}
