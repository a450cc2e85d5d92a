//! The ZMTP 3.x protocol core: greeting, frames, commands, metadata, mechanisms and the connection
//! state machine. No I/O, no async, no clock: input is bytes and `now`, output is events, bytes to
//! transmit and the next deadline (quinn-proto's discipline).
//!
//! The entry point is [`Connection`]; the codec types ([`Greeting`], [`FrameHeader`], [`Command`],
//! [`Metadata`]) are public for tools, tests and fuzzers.

mod body_pool;
pub mod command;
pub mod config;
pub mod connection;
pub mod error;
pub mod frame;
pub mod greeting;
pub mod keys;
pub mod loopback;
pub mod mechanism;
pub mod metadata;
pub mod socket_type;
pub mod transmit;
pub mod z85;
pub mod zap;

pub use command::Command;
pub use config::{ConnectionConfig, HeartbeatConfig, InvalidIdentity, InvalidProperty, Limits};
pub use connection::{Connection, Event, PeerInfo, Stats};
pub use error::{ConnectionError, Escaped, Initiator, ProtocolError, SendError};
pub use frame::{FrameFlags, FrameHeader};
pub use greeting::{Greeting, MechanismName, Version, GREETING_LEN};
pub use keys::{curve_keypair, curve_public, CurveKeyPair, CurvePublicKey, CurveSecretKey, KeyError};
pub use mechanism::{AuthReply, Credentials, Password, Security};
pub use metadata::Metadata;
pub use socket_type::SocketType;
pub use transmit::TransmitQueue;
