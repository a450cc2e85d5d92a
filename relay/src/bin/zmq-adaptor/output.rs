//! What the adaptor prints on stdout: one line per message, written by a dedicated thread so a slow
//! reader of stdout never blocks the runtime.
//!
//! A frame is shown as text when every byte is printable ASCII (space to `~`), otherwise as `0x`
//! followed by lowercase hex; an empty frame is `<empty>`; only the first [`SHOWN_MAX`] bytes are
//! shown, followed by `...(<n> bytes)` when the frame is longer. Frames are separated by ` | `.

use std::fmt::Write as _;
use std::io::Write as _;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use zmtp::Msg;

/// Longest frame prefix shown in a line, in bytes.
pub const SHOWN_MAX: usize = 256;

/// Lines queued for the writing thread before printers wait (debug output is never dropped: the
/// forwarding waits instead, only in `--debug` and `--test` modes).
const QUEUED_LINES: usize = 4096;

/// Appends `frame` to `out` as described in the module documentation.
pub fn render_frame(frame: &[u8], out: &mut String) {
    let shown = &frame[..frame.len().min(SHOWN_MAX)];
    if frame.is_empty() {
        out.push_str("<empty>");
    } else if shown.iter().all(|b| (0x20..=0x7e).contains(b)) {
        out.extend(shown.iter().map(|&b| char::from(b)));
    } else {
        out.push_str("0x");
        for b in shown {
            // Writing to a String cannot fail.
            let _ = write!(out, "{b:02x}");
        }
    }
    if frame.len() > SHOWN_MAX {
        let _ = write!(out, "...({} bytes)", frame.len());
    }
}

/// Every frame of `frames`, rendered and separated by ` | `.
pub fn render_frames(frames: &[Bytes]) -> String {
    let mut out = String::new();
    for (i, frame) in frames.iter().enumerate() {
        if i > 0 {
            out.push_str(" | ");
        }
        render_frame(frame, &mut out);
    }
    out
}

/// The `--debug` line for a message flowing downstream (publisher → subscribers).
pub fn data_line(msg: &Msg) -> String {
    format!("[data] {}", render_frames(msg.frames()))
}

/// The `--debug` line for a message flowing upstream (subscribers → publishers): `[subscribe]` or
/// `[unsubscribe]` and the topic for a subscription message (one frame starting with `0x01` or
/// `0x00`), `[upstream]` and the frames for anything else.
pub fn upstream_line(msg: &Msg) -> String {
    if let [frame] = msg.frames() {
        let verb = match frame.first() {
            Some(1) => Some("subscribe"),
            Some(0) => Some("unsubscribe"),
            _ => None,
        };
        if let Some(verb) = verb {
            let mut line = format!("[{verb}] ");
            render_frame(&frame[1..], &mut line);
            return line;
        }
    }
    format!("[upstream] {}", render_frames(msg.frames()))
}

/// A handle that queues lines for stdout. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Printer {
    tx: mpsc::Sender<String>,
}

impl Printer {
    /// Starts the thread that writes lines to stdout, flushing after each. Once stdout is gone (a
    /// closed pipe), lines are discarded. Returns the printer and the thread, which ends when every
    /// printer is dropped.
    pub fn start() -> std::io::Result<(Printer, JoinHandle<()>)> {
        let (tx, mut rx) = mpsc::channel::<String>(QUEUED_LINES);
        let thread = std::thread::Builder::new().name("stdout".into()).spawn(move || {
            let mut stdout = std::io::stdout().lock();
            let mut broken = false;
            while let Some(line) = rx.blocking_recv() {
                if broken {
                    continue;
                }
                if let Err(e) = writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
                    tracing::warn!(error = %e, "cannot write to stdout; discarding further output");
                    broken = true;
                }
            }
        })?;
        Ok((Printer { tx }, thread))
    }

    /// Queues one line, waiting while the queue is full.
    pub async fn print(&self, line: String) {
        // Fails only once the writing thread is gone, and then there is nowhere to print.
        let _ = self.tx.send(line).await;
    }
}

/// Waits up to `timeout` for the writing thread to print what is queued (every [`Printer`] must have
/// been dropped).
pub async fn finish(thread: JoinHandle<()>, timeout: Duration) {
    let join = tokio::task::spawn_blocking(move || thread.join());
    if tokio::time::timeout(timeout, join).await.is_err() {
        tracing::warn!("stdout is not draining; exiting with output still queued");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_text_hex_empty_and_long_frames() {
        let frames = [
            Bytes::from_static(b"weather.paris"),
            Bytes::from_static(b"\x00\xffA"),
            Bytes::new(),
            Bytes::from(vec![b'x'; SHOWN_MAX + 4]),
        ];
        let line = render_frames(&frames);
        let long = format!("{}...({} bytes)", "x".repeat(SHOWN_MAX), SHOWN_MAX + 4);
        assert_eq!(line, format!("weather.paris | 0x00ff41 | <empty> | {long}"));
    }

    #[test]
    fn names_subscriptions_and_other_upstream_messages() {
        assert_eq!(upstream_line(&Msg::from(Bytes::from_static(b"\x01news"))), "[subscribe] news");
        assert_eq!(upstream_line(&Msg::from(Bytes::from_static(b"\x00news"))), "[unsubscribe] news");
        assert_eq!(upstream_line(&Msg::from(Bytes::from_static(b"\x01"))), "[subscribe] <empty>");
        assert_eq!(upstream_line(&Msg::from(Bytes::from_static(b"hi"))), "[upstream] hi");
        let two = Msg::from(vec![Bytes::from_static(b"\x01a"), Bytes::from_static(b"b")]);
        assert_eq!(upstream_line(&two), "[upstream] 0x0161 | b");
        assert_eq!(data_line(&two), "[data] 0x0161 | b");
    }
}
