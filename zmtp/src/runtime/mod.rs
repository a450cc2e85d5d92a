//! The socket runtime on tokio: socket handles, per-connection drivers, transports and reconnection.

pub mod auth;
pub(crate) mod commands;
pub(crate) mod core;
pub(crate) mod driver;
pub mod endpoint;
pub mod monitor;
pub mod options;
pub mod proxy;
pub mod socket;
pub(crate) mod transport;
pub(crate) mod zap;
