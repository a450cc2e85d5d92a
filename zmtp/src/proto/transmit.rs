//! [`TransmitQueue`]: the bytes a connection wants written, gathered for vectored writes.
//!
//! Headers, commands and greetings are written into one growing buffer (`tail`); message bodies are
//! queued as the caller's own [`Bytes`], never copied. A writer takes up to `IOV_MAX` chunks at once
//! with [`Buf::chunks_vectored`] and reports how much the kernel took with [`Buf::advance`], so one
//! syscall carries many messages.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Minimum growth of the header buffer, so headers of many messages share one allocation.
const TAIL_CHUNK: usize = 4096;

/// A queue of bytes to transmit. Implements [`Buf`].
#[derive(Debug, Default)]
pub struct TransmitQueue {
    /// Frozen chunks, in order, ahead of `tail`.
    chunks: VecDeque<Bytes>,
    /// Bytes being accumulated (headers, small commands); always after every chunk.
    tail: BytesMut,
    /// Total queued bytes.
    len: usize,
    /// Bodies at most this long are copied next to their header instead of queued as a chunk.
    inline_max: usize,
    /// Bytes handed to `advance` since the queue was created (its write position on the wire).
    sent_total: u64,
}

impl TransmitQueue {
    /// An empty queue that never copies bodies.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the largest body copied next to its header instead of queued as its own chunk (default 0:
    /// bodies are never copied). Copying tiny bodies can beat an extra iovec entry; measure first.
    pub fn set_inline_max(&mut self, inline_max: usize) {
        self.inline_max = inline_max;
    }

    /// Makes room for `n` more octets of headers and commands, exactly (a connection's handshake
    /// needs a few hundred octets, not a 4 KiB block).
    pub(crate) fn reserve_tail(&mut self, n: usize) {
        self.tail.reserve(n);
    }

    /// Frees the header block and the chunk list if nothing is waiting to be written (an idle
    /// connection holds neither). The next message allocates them again.
    pub(crate) fn release_idle(&mut self) {
        if self.len != 0 {
            return;
        }
        if self.tail.capacity() > 0 {
            self.tail = BytesMut::new();
        }
        if self.chunks.capacity() > 0 {
            self.chunks = VecDeque::new();
        }
    }

    /// Discards everything queued (the transport failed; nothing more can be written).
    pub(crate) fn clear_all(&mut self) {
        let n = self.len;
        self.advance(n);
    }

    /// Queued bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The stream offset just past everything queued so far.
    pub(crate) fn end_offset(&self) -> u64 {
        self.sent_total + self.len as u64
    }

    /// The stream offset up to which bytes have been written.
    pub(crate) fn sent_offset(&self) -> u64 {
        self.sent_total
    }

    /// Writes small encoded data (a header, a command) with `f`, which must write exactly `n` bytes.
    pub(crate) fn write_with(&mut self, n: usize, f: impl FnOnce(&mut BytesMut)) {
        if self.tail.capacity() - self.tail.len() < n {
            self.tail.reserve(n.max(TAIL_CHUNK));
        }
        let before = self.tail.len();
        f(&mut self.tail);
        debug_assert_eq!(self.tail.len() - before, n, "encoder wrote a different length than announced");
        self.len += self.tail.len() - before;
    }

    /// Queues a body without copying it (or copies it, if it is at most `inline_max` octets).
    pub(crate) fn push_body(&mut self, body: Bytes) {
        if body.is_empty() {
            return;
        }
        if body.len() <= self.inline_max {
            let n = body.len();
            self.write_with(n, |b| b.put_slice(&body));
            return;
        }
        self.seal_tail();
        self.len += body.len();
        self.chunks.push_back(body);
    }

    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            self.chunks.push_back(self.tail.split().freeze());
        }
    }

    /// Removes and returns everything queued as one contiguous buffer (copies: for tests and tools).
    pub fn take_all(&mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        while self.has_remaining() {
            let c = self.chunk();
            out.extend_from_slice(c);
            let n = c.len();
            self.advance(n);
        }
        out
    }

    /// The queued chunks, in order, without consuming them (for tests that check zero-copy).
    pub fn chunks(&self) -> impl Iterator<Item = &[u8]> {
        self.chunks.iter().map(|b| &b[..]).chain(std::iter::once(&self.tail[..]).filter(|t| !t.is_empty()))
    }
}

impl Buf for TransmitQueue {
    fn remaining(&self) -> usize {
        self.len
    }

    fn chunk(&self) -> &[u8] {
        match self.chunks.front() {
            Some(c) => c,
            None => &self.tail,
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for c in &self.chunks {
            if n == dst.len() {
                return n;
            }
            dst[n] = IoSlice::new(c);
            n += 1;
        }
        if n < dst.len() && !self.tail.is_empty() {
            dst[n] = IoSlice::new(&self.tail);
            n += 1;
        }
        n
    }

    fn advance(&mut self, mut cnt: usize) {
        assert!(cnt <= self.len, "advance past the end of the transmit queue");
        self.len -= cnt;
        self.sent_total += cnt as u64;
        while cnt > 0 {
            match self.chunks.front_mut() {
                Some(front) if front.len() <= cnt => {
                    cnt -= front.len();
                    self.chunks.pop_front();
                }
                Some(front) => {
                    front.advance(cnt);
                    cnt = 0;
                }
                None => {
                    self.tail.advance(cnt);
                    cnt = 0;
                }
            }
        }
        if self.len == 0 && self.tail.capacity() > 4 * TAIL_CHUNK {
            // Do not keep a large burst's buffer around on an idle connection.
            self.tail = BytesMut::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathers_headers_and_bodies_in_order() {
        let mut q = TransmitQueue::new();
        let body = Bytes::from(vec![7u8; 100]);
        q.write_with(2, |b| b.put_slice(&[0, 100]));
        q.push_body(body.clone());
        q.write_with(2, |b| b.put_slice(&[0, 0]));
        assert_eq!(q.len(), 104);
        let mut iov = [IoSlice::new(&[]); 8];
        assert_eq!(q.chunks_vectored(&mut iov), 3);
        // The body chunk is the caller's buffer, not a copy.
        assert_eq!(iov[1].as_ptr(), body.as_ptr());
        let all = q.take_all();
        assert_eq!(all.len(), 104);
        assert!(q.is_empty());
    }

    #[test]
    fn advances_across_partial_chunks() {
        let mut q = TransmitQueue::new();
        q.write_with(3, |b| b.put_slice(b"abc"));
        q.push_body(Bytes::from_static(b"defgh"));
        q.write_with(2, |b| b.put_slice(b"ij"));
        q.advance(4);
        assert_eq!(q.chunk(), b"efgh");
        q.advance(5);
        assert_eq!(q.chunk(), b"j");
        q.advance(1);
        assert!(q.is_empty());
    }

    #[test]
    fn inlines_small_bodies_only_when_asked() {
        let mut q = TransmitQueue::new();
        q.set_inline_max(8);
        q.write_with(2, |b| b.put_slice(&[0, 3]));
        q.push_body(Bytes::from_static(b"abc"));
        assert_eq!(q.chunks().count(), 1);
    }
}
