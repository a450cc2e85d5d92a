//! [`ConsumerStateTable`]: the operations on one table, in the order they arrived, handed to the
//! application in batches (SONiC's `ZmqConsumerStateTable`).
//!
//! The table registers itself with a [`Server`] for its (database, table) and queues what the server
//! hands it. [`ConsumerStateTable::pops`] takes at most `pop_batch_size` operations (default 128)
//! from the front; while more remain the table stays readable, so a `select`-style loop comes back
//! for them (SONiC notifies its event again). The async face is [`ConsumerStateTable::next_batch`]
//! (or [`ConsumerStateTable::stream`]); the blocking face, for a thread, is
//! [`ConsumerStateTable::pops_blocking`].
//!
//! With a [`WriteThrough`], every operation is also written to Redis in the background, in the same
//! order (SONiC's `dbPersistence`).
//!
//! SONiC's queue has no bound; this one holds at most [`ConsumerOptions::max_queued_bytes`], and
//! when it is full the server stops reading (the backlog waits in the sockets and the producers'
//! retries) until the application pops.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::Stream;
use tokio::sync::Notify;

use crate::server::{Handler, Registration, Server};
use crate::wire::{Batch, Operation};
use crate::writethrough::WriteThrough;

/// What an operation is charged: its bytes, its own struct and slot, and per field the pair of
/// `Bytes` (64) and the two lengths it came with in the frame (16).
fn cost(op: &Operation) -> usize {
    op.byte_len() + 64 + 80 * op.fields.len()
}

/// What a received batch pins beyond its operations' own bytes, in the consumer table's queue:
/// its operations are slices of the frame they came in, which stays allocated whole (its database
/// and table names too) as long as one of them is queued. That is charged to the batch's last
/// operation, which in a FIFO queue is the last of them to go; otherwise a peer sending 8 MiB
/// names with one tiny operation each would be charged a few bytes per message for 8 MiB held.
fn pinned(batch: &Batch) -> usize {
    batch.db.len() + batch.table.len() + 32
}

/// `ops` with their charges: each its cost, and the last also `extra`.
fn charged(ops: Vec<Operation>, extra: usize) -> impl Iterator<Item = (Operation, usize)> {
    let last = ops.len().saturating_sub(1);
    ops.into_iter().enumerate().map(move |(i, op)| {
        let c = cost(&op) + if i == last { extra } else { 0 };
        (op, c)
    })
}

/// SONiC's `DEFAULT_POP_BATCH_SIZE`.
pub const DEFAULT_POP_BATCH_SIZE: usize = 128;

/// How a [`ConsumerStateTable`] is set up.
#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    /// The most operations one pop returns (SONiC: 128; 0 means the default, as SONiC treats a
    /// non-positive size).
    pub pop_batch_size: usize,
    /// Also write every operation to Redis.
    pub write_through: Option<WriteThrough>,
    /// The most bytes of operations queued before the server is held back (keys, fields and
    /// values, plus 64 per operation).
    pub max_queued_bytes: usize,
}

impl Default for ConsumerOptions {
    fn default() -> Self {
        ConsumerOptions {
            pop_batch_size: DEFAULT_POP_BATCH_SIZE,
            write_through: None,
            max_queued_bytes: 256 * 1024 * 1024,
        }
    }
}

#[derive(Default)]
struct Queue {
    /// Operations with what each is charged against `max_queued_bytes` (see `pinned`:
    /// the frame they keep alive is charged to a batch's last operation).
    ops: VecDeque<(Operation, usize)>,
    bytes: usize,
    /// Threads waiting in `pops_blocking`: the condition variable is notified only when there are
    /// some, because a notify is a futex syscall even with nobody waiting, and a message must not
    /// cost a syscall.
    sleepers: usize,
}

struct Shared {
    table: Bytes,
    queue: Mutex<Queue>,
    /// Wakes blocking poppers.
    cond: Condvar,
    /// Wakes async poppers.
    readable: Notify,
    /// Wakes the server when room was made.
    room: Notify,
    max_bytes: usize,
    write_through: Option<WriteThrough>,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        match self.queue.lock() {
            Ok(q) => q,
            Err(p) => p.into_inner(),
        }
    }

    fn has_room(&self) -> bool {
        self.queue().bytes < self.max_bytes
    }
}

impl Handler for Shared {
    fn handle(&self, batch: Batch) -> Result<(), Batch> {
        if !self.has_room() {
            return Err(batch);
        }
        if let Some(wt) = &self.write_through {
            if !wt.handle_has_room() {
                return Err(batch);
            }
            // The application may keep or change what it pops; Redis gets what was received.
            wt.handle_ops(&batch);
        }
        let extra = pinned(&batch);
        let sleepers = {
            let mut q = self.queue();
            for (op, charge) in charged(batch.ops, extra) {
                q.bytes += charge;
                q.ops.push_back((op, charge));
            }
            q.sleepers
        };
        if sleepers > 0 {
            self.cond.notify_all();
        }
        self.readable.notify_one();
        Ok(())
    }

    fn ready(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            crate::wait::until(&self.room, || self.has_room()).await;
            if let Some(wt) = &self.write_through {
                wt.room().await;
            }
        })
    }
}

/// One table's operations, in order. See the [module documentation](self). Dropping it removes
/// its handler from the server.
pub struct ConsumerStateTable {
    shared: Arc<Shared>,
    db: Bytes,
    pop_batch_size: usize,
    registration: Registration,
}

impl std::fmt::Debug for ConsumerStateTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerStateTable")
            .field("db", &self.db)
            .field("table", &self.shared.table)
            .field("queued", &self.len())
            .finish()
    }
}

impl Drop for ConsumerStateTable {
    fn drop(&mut self) {
        self.registration.remove(&self.db, &self.shared.table);
    }
}

impl ConsumerStateTable {
    /// The consumer of `table` in `db`, registered with `server` (whose messages for that table it
    /// receives from now on).
    pub fn new(
        server: &Server,
        db: impl Into<Bytes>,
        table: impl Into<Bytes>,
        options: ConsumerOptions,
    ) -> Self {
        let (db, table) = (db.into(), table.into());
        let pop_batch_size =
            if options.pop_batch_size == 0 { DEFAULT_POP_BATCH_SIZE } else { options.pop_batch_size };
        let shared = Arc::new(Shared {
            table: table.clone(),
            queue: Mutex::new(Queue::default()),
            cond: Condvar::new(),
            readable: Notify::new(),
            room: Notify::new(),
            max_bytes: options.max_queued_bytes,
            write_through: options.write_through,
        });
        server.register(db.clone(), table, Arc::clone(&shared) as Arc<dyn Handler>);
        ConsumerStateTable { shared, db, pop_batch_size, registration: server.registration() }
    }

    /// The table's name.
    pub fn table(&self) -> &Bytes {
        &self.shared.table
    }

    /// Operations waiting to be popped.
    pub fn len(&self) -> usize {
        self.shared.queue().ops.len()
    }

    /// Whether nothing waits to be popped.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes at most `pop_batch_size` operations from the front, in order (SONiC's `pops`); empty
    /// when nothing is queued. Never waits.
    pub fn pops(&self) -> Vec<Operation> {
        let (out, more) = {
            let mut q = self.shared.queue();
            let n = q.ops.len().min(self.pop_batch_size);
            let mut freed = 0;
            let out: Vec<Operation> = q
                .ops
                .drain(..n)
                .map(|(op, charge)| {
                    freed += charge;
                    op
                })
                .collect();
            q.bytes -= freed;
            (out, !q.ops.is_empty())
        };
        if !out.is_empty() {
            self.shared.room.notify_waiters();
        }
        if more {
            // Still readable: wake the next waiter too (SONiC notifies its event again).
            self.shared.readable.notify_one();
        }
        out
    }

    /// Waits until something is queued.
    pub async fn readable(&self) {
        crate::wait::until(&self.shared.readable, || !self.is_empty()).await;
    }

    /// Waits for operations and pops them: the next batch, never empty.
    pub async fn next_batch(&self) -> Vec<Operation> {
        loop {
            self.readable().await;
            let ops = self.pops();
            if !ops.is_empty() {
                return ops;
            }
        }
    }

    /// The batches as a stream (each from [`ConsumerStateTable::next_batch`]); it never ends.
    pub fn stream(&self) -> impl Stream<Item = Vec<Operation>> + '_ {
        futures::stream::unfold(self, |t| async move { Some((t.next_batch().await, t)) })
    }

    /// Pops, waiting up to `timeout` for something to arrive; empty if nothing did. For a thread
    /// (it blocks the caller).
    pub fn pops_blocking(&self, timeout: Duration) -> Vec<Operation> {
        let deadline = Instant::now().checked_add(timeout);
        {
            let mut q = self.shared.queue();
            while q.ops.is_empty() {
                let left = match deadline {
                    Some(d) => d.saturating_duration_since(Instant::now()),
                    None => Duration::from_secs(3600),
                };
                if left.is_zero() {
                    return Vec::new();
                }
                q.sleepers += 1;
                q = match self.shared.cond.wait_timeout(q, left) {
                    Ok((q, _)) => q,
                    Err(p) => p.into_inner().0,
                };
                q.sleepers -= 1;
            }
        }
        self.pops()
    }

    /// Operations the write-through has not written yet (SONiC's `dbUpdaterQueueSize`); `None`
    /// without one.
    pub fn write_through_queue_size(&self) -> Option<usize> {
        self.shared.write_through.as_ref().map(WriteThrough::queue_size)
    }
}
