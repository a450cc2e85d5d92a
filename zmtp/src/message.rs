//! [`Msg`]: a ZeroMQ message, a sequence of frames delivered atomically.

use bytes::Bytes;

/// A ZeroMQ message: one or more frames, delivered all together or not at all (RFC 23).
///
/// Frames are [`Bytes`], so a message built from received data shares the connection's read buffer and
/// a message handed to a connection for sending is never copied on its way to the transmit queue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Msg {
    frames: Vec<Bytes>,
}

impl Msg {
    /// An empty message (no frames yet); push frames with [`Msg::push`].
    pub fn new() -> Self {
        Self { frames: Vec::new() }
    }

    /// A message with room for `n` frames.
    pub fn with_capacity(n: usize) -> Self {
        Self { frames: Vec::with_capacity(n) }
    }

    /// Appends a frame.
    pub fn push(&mut self, frame: impl Into<Bytes>) {
        self.frames.push(frame.into());
    }

    /// Inserts a frame at the front (a ROUTER's identity frame, a REQ's empty delimiter).
    pub fn push_front(&mut self, frame: impl Into<Bytes>) {
        self.frames.insert(0, frame.into());
    }

    /// The frames, in order.
    pub fn frames(&self) -> &[Bytes] {
        &self.frames
    }

    /// The frames, mutably.
    pub fn frames_mut(&mut self) -> &mut Vec<Bytes> {
        &mut self.frames
    }

    /// Consumes the message, returning its frames.
    pub fn into_frames(self) -> Vec<Bytes> {
        self.frames
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether the message has no frames.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Total body bytes over all frames.
    pub fn byte_len(&self) -> usize {
        self.frames.iter().map(Bytes::len).sum()
    }
}

impl From<Vec<Bytes>> for Msg {
    fn from(frames: Vec<Bytes>) -> Self {
        Self { frames }
    }
}

impl From<Bytes> for Msg {
    fn from(frame: Bytes) -> Self {
        Self { frames: vec![frame] }
    }
}

impl From<Vec<u8>> for Msg {
    /// A single-frame message owning `body`.
    fn from(body: Vec<u8>) -> Self {
        Msg::from(Bytes::from(body))
    }
}

impl From<String> for Msg {
    /// A single-frame message owning `body`'s bytes.
    fn from(body: String) -> Self {
        Msg::from(Bytes::from(body))
    }
}

impl From<&'static str> for Msg {
    fn from(frame: &'static str) -> Self {
        Self { frames: vec![Bytes::from_static(frame.as_bytes())] }
    }
}

impl From<Vec<&'static [u8]>> for Msg {
    fn from(frames: Vec<&'static [u8]>) -> Self {
        Self { frames: frames.into_iter().map(Bytes::from_static).collect() }
    }
}

impl IntoIterator for Msg {
    type Item = Bytes;
    type IntoIter = std::vec::IntoIter<Bytes>;
    fn into_iter(self) -> Self::IntoIter {
        self.frames.into_iter()
    }
}
