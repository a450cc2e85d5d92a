//! [`Msg`]: a ZeroMQ message, a sequence of frames delivered atomically.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::proto::Metadata;

/// A ZeroMQ message: one or more frames, delivered all together or not at all (RFC 23).
///
/// Frames are [`Bytes`], so a message built from received data shares the connection's read buffer and
/// a message handed to a connection for sending is never copied on its way to the transmit queue.
///
/// A message of one or two frames (the common cases: a body, or a ROUTER's identity and a body) is
/// held inline: making, sending, receiving and dropping it allocates nothing beyond its `Bytes` (a
/// list is allocated only for a third frame, or when [`Msg::frames_mut`] or [`Msg::into_frames`] asks
/// for one).
#[derive(Clone, Default)]
pub struct Msg {
    repr: Repr,
    /// What is known of the peer that sent it, when it authenticated (libzmq's message properties).
    properties: Option<Arc<Properties>>,
}

/// The properties of a received message (libzmq's `zmq_msg_gets`): the authenticated `User-Id`, the
/// metadata the authenticator attached, and the peer's own metadata. Shared by every message of one
/// connection; attached only to messages from peers an authenticator (or ZAP handler) decided on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Properties {
    /// The user id the authenticator gave the peer (`User-Id`; empty for none).
    pub user_id: Bytes,
    /// The metadata the authenticator attached (RFC 27's metadata frame).
    pub auth_metadata: Metadata,
    /// The metadata the peer sent in its handshake (`Socket-Type`, `Identity`, `X-…`).
    pub peer_metadata: Metadata,
}

impl Properties {
    /// A property by name, as libzmq's `zmq_msg_gets`: `User-Id`, then the authenticator's metadata,
    /// then the peer's (names compared case-insensitively).
    pub fn get(&self, name: &str) -> Option<&Bytes> {
        if name.eq_ignore_ascii_case("User-Id") {
            return Some(&self.user_id).filter(|id| !id.is_empty());
        }
        self.auth_metadata.get(name).or_else(|| self.peer_metadata.get(name))
    }
}

#[derive(Clone, Default)]
enum Repr {
    #[default]
    Empty,
    One(Bytes),
    Two([Bytes; 2]),
    Many(Vec<Bytes>),
}

impl Msg {
    /// The properties of a received message, when its peer was authenticated.
    pub fn properties(&self) -> Option<&Properties> {
        self.properties.as_deref()
    }

    /// The authenticated `User-Id` of the peer that sent this message, if any.
    pub fn user_id(&self) -> Option<&Bytes> {
        self.properties().and_then(|p| p.get("User-Id"))
    }

    /// A property of a received message by name (libzmq's `zmq_msg_gets`): see [`Properties::get`].
    pub fn property(&self, name: &str) -> Option<&Bytes> {
        self.properties().and_then(|p| p.get(name))
    }

    /// Takes the properties away (a pattern rebuilding a message passes them on with
    /// [`Msg::with_properties`]).
    pub(crate) fn take_properties(&mut self) -> Option<Arc<Properties>> {
        self.properties.take()
    }

    /// This message with `properties` attached (or none).
    pub(crate) fn with_properties(mut self, properties: Option<Arc<Properties>>) -> Self {
        self.properties = properties;
        self
    }

    /// Attaches properties (the runtime does, for authenticated peers).
    pub(crate) fn set_properties(&mut self, properties: Arc<Properties>) {
        self.properties = Some(properties);
    }

    /// An empty message (no frames yet); push frames with [`Msg::push`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A message with room for `n` frames.
    pub fn with_capacity(n: usize) -> Self {
        if n <= 1 {
            Self::new()
        } else {
            Self { repr: Repr::Many(Vec::with_capacity(n)), properties: None }
        }
    }

    /// Appends a frame.
    pub fn push(&mut self, frame: impl Into<Bytes>) {
        let frame = frame.into();
        self.repr = match std::mem::take(&mut self.repr) {
            Repr::Empty => Repr::One(frame),
            Repr::One(first) => Repr::Two([first, frame]),
            Repr::Two([a, b]) => Repr::Many(vec![a, b, frame]),
            Repr::Many(mut frames) => {
                frames.push(frame);
                Repr::Many(frames)
            }
        };
    }

    /// Inserts a frame at the front (a ROUTER's identity frame, a REQ's empty delimiter).
    pub fn push_front(&mut self, frame: impl Into<Bytes>) {
        let frame = frame.into();
        self.repr = match std::mem::take(&mut self.repr) {
            Repr::Empty => Repr::One(frame),
            Repr::One(first) => Repr::Two([frame, first]),
            Repr::Two([a, b]) => Repr::Many(vec![frame, a, b]),
            Repr::Many(mut frames) => {
                frames.insert(0, frame);
                Repr::Many(frames)
            }
        };
    }

    /// The frames, in order.
    pub fn frames(&self) -> &[Bytes] {
        match &self.repr {
            Repr::Empty => &[],
            Repr::One(frame) => std::slice::from_ref(frame),
            Repr::Two(frames) => frames,
            Repr::Many(frames) => frames,
        }
    }

    /// The frames, mutably (a one-frame message moves its frame into a list first).
    pub fn frames_mut(&mut self) -> &mut Vec<Bytes> {
        self.repr = match std::mem::take(&mut self.repr) {
            Repr::Empty => Repr::Many(Vec::new()),
            Repr::One(frame) => Repr::Many(vec![frame]),
            Repr::Two([a, b]) => Repr::Many(vec![a, b]),
            many => many,
        };
        match &mut self.repr {
            Repr::Many(frames) => frames,
            // Just made `Many` above.
            Repr::Empty | Repr::One(_) | Repr::Two(_) => unreachable!("frames_mut made the list"),
        }
    }

    /// Consumes the message, returning its frames.
    pub fn into_frames(self) -> Vec<Bytes> {
        match self.repr {
            Repr::Empty => Vec::new(),
            Repr::One(frame) => vec![frame],
            Repr::Two([a, b]) => vec![a, b],
            Repr::Many(frames) => frames,
        }
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.frames().len()
    }

    /// Whether the message has no frames.
    pub fn is_empty(&self) -> bool {
        matches!(&self.repr, Repr::Empty) || self.frames().is_empty()
    }

    /// Total body bytes over all frames.
    pub fn byte_len(&self) -> usize {
        self.frames().iter().map(Bytes::len).sum()
    }
}

impl PartialEq for Msg {
    fn eq(&self, other: &Self) -> bool {
        self.frames() == other.frames()
    }
}

impl Eq for Msg {}

impl fmt::Debug for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Msg").field("frames", &self.frames()).finish()
    }
}

impl From<Vec<Bytes>> for Msg {
    fn from(frames: Vec<Bytes>) -> Self {
        Self { repr: Repr::Many(frames), properties: None }
    }
}

impl From<Bytes> for Msg {
    fn from(frame: Bytes) -> Self {
        Self { repr: Repr::One(frame), properties: None }
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
        Msg::from(Bytes::from_static(frame.as_bytes()))
    }
}

impl From<Vec<&'static [u8]>> for Msg {
    fn from(frames: Vec<&'static [u8]>) -> Self {
        Msg::from(frames.into_iter().map(Bytes::from_static).collect::<Vec<_>>())
    }
}

impl IntoIterator for Msg {
    type Item = Bytes;
    type IntoIter = IntoIter;
    fn into_iter(self) -> IntoIter {
        IntoIter(match self.repr {
            Repr::Empty => IterRepr::One(None),
            Repr::One(frame) => IterRepr::One(Some(frame)),
            Repr::Two(frames) => IterRepr::Two(frames.into_iter()),
            Repr::Many(frames) => IterRepr::Many(frames.into_iter()),
        })
    }
}

/// The frames of a [`Msg`], by value.
#[derive(Debug)]
pub struct IntoIter(IterRepr);

#[derive(Debug)]
enum IterRepr {
    One(Option<Bytes>),
    Two(std::array::IntoIter<Bytes, 2>),
    Many(std::vec::IntoIter<Bytes>),
}

impl Iterator for IntoIter {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        match &mut self.0 {
            IterRepr::One(frame) => frame.take(),
            IterRepr::Two(frames) => frames.next(),
            IterRepr::Many(frames) => frames.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match &self.0 {
            IterRepr::One(frame) => usize::from(frame.is_some()),
            IterRepr::Two(frames) => frames.len(),
            IterRepr::Many(frames) => frames.len(),
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for IntoIter {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_frame_and_many_frames_compare_by_their_frames() {
        let one = Msg::from(Bytes::from_static(b"a"));
        let listed = Msg::from(vec![Bytes::from_static(b"a")]);
        assert_eq!(one, listed);
        assert_eq!(one.len(), 1);
        assert_eq!(one.clone().into_iter().collect::<Vec<_>>(), listed.into_frames());
    }

    #[test]
    fn push_grows_from_empty_to_one_to_many() {
        let mut msg = Msg::new();
        assert!(msg.is_empty());
        msg.push("b");
        assert_eq!(msg.frames(), [Bytes::from_static(b"b")]);
        msg.push_front("a");
        msg.push("c");
        assert_eq!(msg.frames(), [&b"a"[..], b"b", b"c"]);
        assert_eq!(msg.byte_len(), 3);
        let mut iter = msg.into_iter();
        assert_eq!(iter.len(), 3);
        assert_eq!(iter.next().as_deref(), Some(&b"a"[..]));
    }

    #[test]
    fn frames_mut_gives_a_list_for_any_message() {
        let mut msg = Msg::from("x");
        msg.frames_mut().push(Bytes::from_static(b"y"));
        assert_eq!(msg.frames(), [&b"x"[..], b"y"]);
        let mut empty = Msg::new();
        empty.frames_mut().push(Bytes::from_static(b"z"));
        assert_eq!(empty.len(), 1);
        assert!(Msg::from(Vec::<Bytes>::new()).is_empty());
    }
}
