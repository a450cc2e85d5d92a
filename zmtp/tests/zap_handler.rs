//! The RFC 27 face of authentication: a ZAP handler written the libzmq way (a REP bound at
//! inproc://zeromq.zap.01) decides for servers that have no authenticator of their own, and handlers
//! that misbehave fail closed. In a file (a process) of its own: the handler is process-wide, and
//! would decide for every other test's servers too.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use bytes::Bytes;
use zmtp::{curve_keypair, Msg, Options, Socket, SocketType};

async fn recv_within(s: &Socket, t: Duration) -> Option<Msg> {
    tokio::time::timeout(t, s.recv()).await.ok().and_then(Result::ok)
}

/// How a test handler answers a request.
type Answer = fn(&Msg) -> Vec<&'static [u8]>;

async fn curve_round_trip() -> Option<Msg> {
    let (s, c) = (curve_keypair().unwrap(), curve_keypair().unwrap());
    let server =
        Options { curve_server: true, curve_secret_key: Some(s.secret.clone()), ..Options::default() };
    let client = Options {
        curve_secret_key: Some(c.secret.clone()),
        curve_server_key: Some(s.public),
        ..Options::default()
    };
    let rep = Socket::with_options(SocketType::Rep, server).unwrap();
    let ep = rep.bind("tcp://127.0.0.1:*").await.unwrap();
    let req = Socket::with_options(SocketType::Req, client).unwrap();
    req.connect(&ep).unwrap();
    req.send("ping").await.unwrap();
    let got = recv_within(&rep, Duration::from_millis(1500)).await?;
    rep.send(got).await.unwrap();
    recv_within(&req, Duration::from_millis(1500)).await
}

/// A ZAP handler the libzmq way: a REP at inproc://zeromq.zap.01 answering with `answer(request)`.
async fn zap_handler(answer: Answer) -> tokio::task::JoinHandle<Socket> {
    let handler = Socket::new(SocketType::Rep).unwrap();
    handler.bind("inproc://zeromq.zap.01").await.unwrap();
    tokio::spawn(async move {
        while let Ok(request) = handler.recv().await {
            let reply: Vec<Bytes> = answer(&request).into_iter().map(Bytes::from_static).collect();
            if handler.send(Msg::from(reply)).await.is_err() {
                break;
            }
        }
        handler
    })
}

#[tokio::test]
async fn an_rfc_27_handler_at_inproc_decides_and_broken_ones_fail_closed() {
    // One test for every handler: the inproc name is process-wide.
    let cases: [(&str, Answer, bool); 6] = [
        ("allows", |r| vec![b"1.0", leak(&r.frames()[1]), b"200", b"OK", b"bob", b""], true),
        ("denies", |r| vec![b"1.0", leak(&r.frames()[1]), b"400", b"No", b"", b""], false),
        ("wrong version", |r| vec![b"2.0", leak(&r.frames()[1]), b"200", b"OK", b"", b""], false),
        ("wrong request id", |_| vec![b"1.0", b"nope", b"200", b"OK", b"", b""], false),
        ("status abc", |r| vec![b"1.0", leak(&r.frames()[1]), b"abc", b"OK", b"", b""], false),
        ("too many frames", |r| vec![b"1.0", leak(&r.frames()[1]), b"200", b"OK", b"", b"", b"x"], false),
    ];
    for (what, answer, allowed) in cases {
        let task = zap_handler(answer).await;
        let got = curve_round_trip().await;
        assert_eq!(got.is_some(), allowed, "{what}");
        task.abort();
        // Let the aborted handler's socket go, freeing the inproc name.
        let _ = task.await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Request frames are `version, id, domain, address, identity, mechanism, credentials` (the REP
/// strips the delimiter); the reply frames need `'static` lifetimes for the table above.
fn leak(b: &Bytes) -> &'static [u8] {
    Box::leak(b.to_vec().into_boxed_slice())
}
