//! SONiC's ZMQ producer/consumer state table (`sonic-swss-common`: `ZmqClient`, `ZmqServer`,
//! `ZmqProducerStateTable`, `ZmqConsumerStateTable`, `AsyncDBUpdater`) on zmtp sockets,
//! byte-compatible with SONiC's C++ so that either side can be replaced by this one.
//!
//! Producers send SET and DEL operations on (database, table, key) → fields over ZeroMQ; a consumer
//! receives them in order, hands them to the application in batches and, optionally, writes them
//! through to Redis on a background task.
//!
//! - [`wire`]: the message format (SONiC's `BinarySerializer`), checked before it is read.
//! - [`Client`] (PUSH, or REQ in synchronous mode) and [`Server`] (PULL, or REP): the sockets.
//! - [`ProducerStateTable`] and [`ConsumerStateTable`]: one table's operations.
//! - [`WriteThrough`]: the Redis writer.
//!
//! ```no_run
//! use statetable::{Client, ClientOptions, ConsumerOptions, ConsumerStateTable, ProducerStateTable,
//!     Server, ServerOptions};
//!
//! # async fn demo() -> statetable::Result<()> {
//! let server = Server::new("tcp://127.0.0.1:8100", ServerOptions::default()).await?;
//! let routes = ConsumerStateTable::new(&server, "APPL_DB", "ROUTE_TABLE", ConsumerOptions::default());
//!
//! let client = Client::connect("tcp://127.0.0.1:8100", ClientOptions::default())?;
//! let producer = ProducerStateTable::new(&client, "APPL_DB", "ROUTE_TABLE");
//! producer.set(b"10.0.0.0/24", &[("nexthop", "10.1.0.1"), ("ifname", "Ethernet0")]).await?;
//! producer.del(b"10.0.1.0/24").await?;
//!
//! let ops = routes.next_batch().await; // at most 128, in order
//! # Ok(()) }
//! ```
//!
//! Where SONiC is unsafe this crate does better, and says so where it does: see the documentation
//! of [`wire`] (a parser that checks before it reads), [`Server`] (a bad peer loses its own
//! connection), [`Client`] (a synchronous client that recovers from a lost reply) and
//! [`ConsumerStateTable`] (a bounded queue).

pub mod client;
pub mod consumer;
pub mod error;
pub mod producer;
mod rt;
pub mod server;
mod wait;
pub mod wire;
pub mod writethrough;

pub use client::{Client, ClientOptions};
pub use consumer::{ConsumerOptions, ConsumerStateTable};
pub use error::{Error, Result};
pub use producer::ProducerStateTable;
pub use server::{Handler, Replier, Server, ServerOptions, ServerStats};
pub use wire::{Batch, Op, Operation};
pub use writethrough::{WriteMode, WriteThrough, WriteThroughOptions, WriteThroughStats};
