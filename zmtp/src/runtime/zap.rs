//! The RFC 27 face of authentication: when a socket has no [`crate::Options::authenticator`] and a
//! ZAP handler is bound at `inproc://zeromq.zap.01` in this process (a REP or ROUTER, written the
//! libzmq way), each request goes to it over inproc, and its reply decides.
//!
//! Each request uses a DEALER of its own, as libzmq gives each session a pipe of its own: a reply
//! with another request id, another version, a bad status or the wrong frame count fails that
//! handshake at once (fail closed, reliability.md A-Z1), and a handler that never answers is ended
//! by the handshake timeout.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;

use super::auth::{AuthFuture, AuthRequest};
use super::options::Options;
use super::socket::Socket;
use crate::message::Msg;
use crate::proto::zap::{self, ZAP_ENDPOINT};
use crate::proto::{AuthReply, SocketType};

/// Whether a ZAP handler is bound in this process.
pub(crate) fn handler_bound() -> bool {
    super::transport::inproc::is_bound(ZAP_ENDPOINT.trim_start_matches("inproc://"))
}

/// Asks the inproc ZAP handler about `request`.
pub(crate) fn ask(request: AuthRequest) -> AuthFuture {
    Box::pin(async move {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed).to_string();
        match exchange(&request, id.as_bytes()).await {
            Ok(reply) => reply,
            Err(why) => {
                tracing::warn!(address = request.address, "ZAP handler failed: {why}; refusing the peer");
                AuthReply::deny(500, why)
            }
        }
    })
}

async fn exchange(request: &AuthRequest, id: &[u8]) -> Result<AuthReply, String> {
    let options = Options { linger: Some(Duration::ZERO), ..Options::default() };
    let socket = Socket::with_options(SocketType::Dealer, options).map_err(|e| e.to_string())?;
    socket.connect(ZAP_ENDPOINT).map_err(|e| e.to_string())?;
    let frames = zap::encode_request(
        id,
        request.domain.as_bytes(),
        request.address.as_bytes(),
        &request.routing_id,
        &request.credentials,
    );
    let result = async {
        socket.send(Msg::from(frames)).await.map_err(|e| format!("sending the request: {e}"))?;
        let reply = socket.recv().await.map_err(|e| format!("receiving the reply: {e}"))?;
        let frames: Vec<Bytes> = reply.into_frames();
        zap::parse_reply(&frames, id).map_err(|e| e.to_string())
    }
    .await;
    socket.close().await;
    result
}
