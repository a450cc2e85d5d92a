//! A hostile subscriber for the proxy flood tests (issue 15, defect 3), shared by
//! `zmtp/tests/proxy_flood.rs` and `relay/tests/e2e_md_flood.rs` (included with `#[path]`).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use zmtp::proto::loopback::null_peer_opening;
use zmtp::proto::{SocketType as WireType, Version};

/// What the hostile subscriber does, over and over until told to stop.
#[derive(Clone, Copy, Debug)]
#[allow(dead_code)] // each includer uses its own subset
pub enum Attack {
    /// Subscribes to everything, never reads, and floods 16-octet messages.
    FloodWithoutReading,
    /// Sends 32 × 1 MiB of data, then keeps sending 1 MiB messages.
    BigData,
    /// SUBSCRIBE and CANCEL of the same topics, without end.
    Churn,
    /// 2 million distinct subscriptions.
    UniqueSubscriptions,
    /// One message whose frames all have MORE set, without end.
    EndlessMultipart,
}

/// One data frame (long form over 255 octets), with MORE set if `more`.
pub fn frame(body: &[u8], more: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 9);
    let more = u8::from(more);
    if body.len() <= 255 {
        out.extend_from_slice(&[more, body.len() as u8]);
    } else {
        out.push(0x02 | more);
        out.extend_from_slice(&(body.len() as u64).to_be_bytes());
    }
    out.extend_from_slice(body);
    out
}

/// A short command frame: the name, then `data`.
pub fn command(name: &str, data: &[u8]) -> Vec<u8> {
    let mut body = vec![name.len() as u8];
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(data);
    let mut out = vec![0x04, body.len() as u8];
    out.extend_from_slice(&body);
    out
}

/// The hostile subscriber: connects to `endpoint` as a SUB and runs `attack` until `stop`; counts the
/// octets it wrote in `written`.
pub fn hostile(endpoint: String, attack: Attack, stop: Arc<AtomicBool>, written: Arc<AtomicU64>) {
    let mut s = TcpStream::connect(endpoint.trim_start_matches("tcp://")).unwrap();
    s.set_write_timeout(Some(Duration::from_millis(200))).unwrap();
    s.write_all(&null_peer_opening(WireType::Sub, Version::V3_1)).unwrap();
    let mut send = |bytes: &[u8]| -> bool {
        // A full socket buffer (the proxy stopped reading us) is fine: try again until stopped.
        let mut rest = bytes;
        while !rest.is_empty() {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            match s.write(rest) {
                Ok(0) => return false,
                Ok(n) => {
                    written.fetch_add(n as u64, Ordering::Relaxed);
                    rest = &rest[n..];
                }
                Err(e)
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => return false,
            }
        }
        true
    };
    match attack {
        Attack::FloodWithoutReading => {
            send(&command("SUBSCRIBE", b""));
            let batch = frame(b"0123456789abcdef", false).repeat(4096);
            while send(&batch) {}
        }
        Attack::BigData => {
            let big = frame(&vec![0x5A; 1 << 20], false);
            while send(&big) {}
        }
        Attack::Churn => {
            let mut batch = Vec::new();
            for i in 0..1000u32 {
                let topic = format!("churn{}", i % 10);
                batch.extend_from_slice(&command("SUBSCRIBE", topic.as_bytes()));
                batch.extend_from_slice(&command("CANCEL", topic.as_bytes()));
            }
            while send(&batch) {}
        }
        Attack::UniqueSubscriptions => {
            let mut n = 0u64;
            while n < 2_000_000 {
                let mut batch = Vec::with_capacity(1 << 16);
                for _ in 0..2000 {
                    batch.extend_from_slice(&command("SUBSCRIBE", format!("u{n:012}").as_bytes()));
                    n += 1;
                }
                if !send(&batch) {
                    return;
                }
            }
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Attack::EndlessMultipart => {
            let part = frame(&[0x33; 1000], true).repeat(64);
            while send(&part) {}
        }
    }
    // Keep reading nothing; dropping the stream closes it.
    let mut sink = [0u8; 1];
    let _ = s.set_read_timeout(Some(Duration::from_millis(1)));
    let _ = s.read(&mut sink);
}

impl Attack {
    /// Every attack.
    #[allow(dead_code)]
    pub const ALL: [Attack; 5] = [
        Attack::FloodWithoutReading,
        Attack::BigData,
        Attack::Churn,
        Attack::UniqueSubscriptions,
        Attack::EndlessMultipart,
    ];
}
