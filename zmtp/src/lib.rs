//! # zmtp
//!
//! A pure-Rust implementation of ZeroMQ's wire protocol, ZMTP 3.x (RFC 23 and RFC 37), and, as it grows,
//! the ZeroMQ sockets built on it.
//!
//! Two layers:
//!
//! - [`Socket`]: ZeroMQ sockets on tokio (all eleven types) over `tcp://`,
//!   `ipc://` and `inproc://`, with libzmq's semantics and [`Options`], a [`Monitor`] of connection
//!   events, and [`blocking::Socket`] for programs without a runtime. Routing policies live in
//!   [`pattern`], one file per RFC group.
//! - [`proto`]: the sans-IO protocol core. It never touches sockets, tasks or the clock: the caller
//!   feeds it bytes and the current [`std::time::Instant`], and polls it for events, bytes to transmit
//!   and the next deadline. Every byte-level behaviour is therefore a plain unit test and a fuzz target.
//!
//! Sockets: see [`Socket`] for a REQ/REP example. The protocol core alone:
//!
//! ```
//! use std::time::Instant;
//! use bytes::Bytes;
//! use zmtp::proto::{Connection, ConnectionConfig, Event, SocketType};
//! use zmtp::Msg;
//!
//! let now = Instant::now();
//! let mut client = Connection::new(ConnectionConfig::new(SocketType::Dealer), now);
//! let mut server = Connection::new(ConnectionConfig::new(SocketType::Router).as_server(true), now);
//!
//! // Shuttle bytes between the two (in memory) until both have completed the handshake.
//! let (client_events, server_events) = zmtp::proto::loopback::exchange(&mut client, &mut server, now);
//! assert!(matches!(client_events[..], [Event::HandshakeComplete(_)]));
//! assert!(matches!(server_events[..], [Event::HandshakeComplete(_)]));
//!
//! client.send_message(Msg::from(vec![Bytes::from_static(b"hello")])).unwrap();
//! let bytes = client.take_transmit();
//! server.handle_input(now, &bytes);
//! match server.poll_event() {
//!     Some(Event::Message(msg)) => assert_eq!(msg.frames()[0], "hello"),
//!     other => panic!("unexpected {other:?}"),
//! }
//! ```

#![forbid(unsafe_code)]

pub mod blocking;
pub mod cert;
pub mod error;
pub mod message;
pub mod pattern;
pub mod proto;
pub mod runtime;

pub use error::{Error, Result, SendError};
pub use message::{Msg, Properties};
pub use proto::SocketType;
pub use proto::{curve_keypair, curve_public, CurveKeyPair, CurvePublicKey, CurveSecretKey, KeyError};
pub use runtime::auth;
pub use runtime::endpoint::Endpoint;
pub use runtime::monitor::{DisconnectReason, HandshakeFailure, Monitor, SocketEvent, SocketEventKind};
pub use runtime::options::Options;
pub use runtime::proxy::{proxy, proxy_steerable, ProxyStatistics};
pub use runtime::socket::Socket;
