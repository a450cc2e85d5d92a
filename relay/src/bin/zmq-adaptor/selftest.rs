//! `--test` mode's extra components: the test publisher, the debug subscriber and the debug
//! receiver behind the SUB→PUSH proxy. Each runs until its socket fails or it is cancelled.

use std::time::Duration;

use bytes::Bytes;
use zmtp::{Endpoint, Socket};

use crate::output::{render_frames, Printer};

/// The test publisher's message number `n`: `PUB-<letter>-<5 digits>`, the letter cycling A..Z and
/// the number counting up (modulo 100 000).
pub fn test_message(n: u64) -> String {
    let letter = char::from(b'A' + (n % 26) as u8);
    format!("PUB-{letter}-{:05}", n % 100_000)
}

/// Sends [`test_message`]s on `publisher` every `interval`, printing `... sending:<message>` for each.
pub async fn publish(publisher: Socket, interval: Duration, printer: Printer) -> zmtp::Result<()> {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for n in 0.. {
        ticks.tick().await;
        let message = test_message(n);
        printer.print(format!("... sending:{message}")).await;
        publisher.send(Bytes::from(message)).await?;
    }
    Ok(())
}

/// Prints `<prefix><message>` for every message `socket` receives.
pub async fn print_received(socket: Socket, prefix: &'static str, printer: Printer) -> zmtp::Result<()> {
    loop {
        let msg = socket.recv().await?;
        printer.print(format!("{prefix}{}", render_frames(msg.frames()))).await;
    }
}

/// The endpoint a local socket connects to in order to reach `bound` (as `bind` returned it): a
/// wildcard tcp host (`0.0.0.0`, `*`, `::`) becomes the loopback address; anything else is unchanged.
pub fn local_endpoint(bound: &str) -> String {
    match bound.parse::<Endpoint>() {
        Ok(Endpoint::Tcp { host, port }) => {
            let host = match host.as_str() {
                "0.0.0.0" | "*" => "127.0.0.1".to_owned(),
                "::" => "::1".to_owned(),
                _ => host,
            };
            Endpoint::Tcp { host, port }.to_string()
        }
        _ => bound.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_messages_cycle_letters_and_count() {
        assert_eq!(test_message(0), "PUB-A-00000");
        assert_eq!(test_message(25), "PUB-Z-00025");
        assert_eq!(test_message(26), "PUB-A-00026");
        assert_eq!(test_message(100_001), "PUB-F-00001");
    }

    #[test]
    fn wildcard_hosts_connect_to_loopback() {
        assert_eq!(local_endpoint("tcp://0.0.0.0:6001"), "tcp://127.0.0.1:6001");
        assert_eq!(local_endpoint("tcp://[::]:6001"), "tcp://[::1]:6001");
        assert_eq!(local_endpoint("tcp://10.1.2.3:6001"), "tcp://10.1.2.3:6001");
        assert_eq!(local_endpoint("ipc:///tmp/x"), "ipc:///tmp/x");
    }
}
