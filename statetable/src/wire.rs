//! The message format of SONiC's ZMQ state tables (`common/binaryserializer.h` in sonic-swss-common),
//! byte for byte.
//!
//! One ZeroMQ message of one frame. It starts with a `u64` count of pairs, then that many pairs, each
//! `[u64 len][len bytes]` (the key) then `[u64 len][len bytes]` (the value). The integers are C++'s
//! `size_t` in native byte order, which is little-endian on every platform SONiC ships (x86-64,
//! arm64, armhf's 32-bit `size_t` aside: SONiC's armhf builds are not ZMQ peers); we always write and
//! read little-endian `u64`.
//!
//! - Pair 0 is (database name, table name).
//! - Then, per operation, a pair (key, the number N of fields in decimal ASCII), followed by N
//!   (field, value) pairs. N = 0 means DEL; otherwise SET.
//!
//! SONiC refuses to send a message of 16 MiB or more (`MQ_RESPONSE_MAX_COUNT`) and cannot receive
//! one; [`MAX_MESSAGE_BYTES`] is that limit, on both sides.
//!
//! SONiC's parser reads each length before checking it against the buffer and takes the field count
//! with `std::stoi` (so `"3abc"` is 3 and `"-1"` corrupts its state). [`decode`] checks every length
//! against the bytes present before reading, refuses a pair count that could not fit in the frame,
//! takes a field count only as plain decimal digits that the rest of the message can hold, refuses
//! bytes after the last pair, and never allocates by a length it has not checked: the operations it
//! returns are slices of the frame (no copy), and its vectors grow by what was actually read.

use bytes::{BufMut, Bytes, BytesMut};

/// The largest message either side accepts, exclusive: SONiC's `MQ_RESPONSE_MAX_COUNT` (16 MiB).
/// SONiC's client refuses to send a message whose size is this or more, and its server's 16 MiB
/// receive buffer cannot hold one; so a message is at most `MAX_MESSAGE_BYTES - 1` bytes.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// The size of one length or count on the wire (C++'s `size_t` on 64-bit SONiC).
const LEN: usize = 8;

/// What an operation does to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Set the key's fields. On the wire a SET has at least one field: a SET with none is sent as,
    /// and received as, a [`Op::Del`] (SONiC does the same).
    Set,
    /// Delete the key.
    Del,
}

/// One operation on a key of a table: SONiC's `KeyOpFieldsValuesTuple`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Operation {
    /// The key within the table.
    pub key: Bytes,
    /// SET or DEL.
    pub op: Op,
    /// The (field, value) pairs of a SET, in order; empty for a DEL.
    pub fields: Vec<(Bytes, Bytes)>,
}

impl Operation {
    /// A SET of `key` to `fields`.
    pub fn set<K, F, V>(key: K, fields: impl IntoIterator<Item = (F, V)>) -> Operation
    where
        K: Into<Bytes>,
        F: Into<Bytes>,
        V: Into<Bytes>,
    {
        Operation {
            key: key.into(),
            op: Op::Set,
            fields: fields.into_iter().map(|(f, v)| (f.into(), v.into())).collect(),
        }
    }

    /// A DEL of `key`.
    pub fn del(key: impl Into<Bytes>) -> Operation {
        Operation { key: key.into(), op: Op::Del, fields: Vec::new() }
    }

    /// The bytes this operation holds (key, fields and values), for accounting.
    pub fn byte_len(&self) -> usize {
        self.fields.iter().fold(self.key.len(), |n, (f, v)| n + f.len() + v.len())
    }

    /// What this operation looks like after a trip over the wire: a SET without fields is a DEL.
    pub fn as_sent(&self) -> Op {
        if self.fields.is_empty() {
            Op::Del
        } else {
            self.op
        }
    }
}

impl std::fmt::Debug for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Operation");
        d.field("key", &self.key).field("op", &self.op);
        if !self.fields.is_empty() {
            d.field("fields", &self.fields.len());
        }
        d.finish()
    }
}

/// One decoded message: the operations on one table of one database, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The database name (pair 0's key), e.g. `APPL_DB`.
    pub db: Bytes,
    /// The table name (pair 0's value), e.g. `ROUTE_TABLE`.
    pub table: Bytes,
    /// The operations, in the order they were sent.
    pub ops: Vec<Operation>,
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The message would reach [`MAX_MESSAGE_BYTES`], which SONiC refuses.
    #[error(
        "message of {size} bytes or more is too large (the limit is {max} bytes, exclusive); split the batch"
    )]
    TooLarge {
        /// The size reached when encoding stopped (at least this many bytes).
        size: usize,
        /// [`MAX_MESSAGE_BYTES`].
        max: usize,
    },
}

/// Why a received message was refused. Each names where in the message it went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The message has no frame, or more than one.
    #[error("a state-table message is one frame; got {0}")]
    Frames(usize),
    /// The frame reaches [`MAX_MESSAGE_BYTES`].
    #[error("message of {0} bytes is too large (the limit is {MAX_MESSAGE_BYTES} bytes, exclusive)")]
    TooLarge(usize),
    /// A length or count, or the bytes it announces, run past the end of the frame.
    #[error("truncated at byte {at}: needs {needed} bytes, {available} left")]
    Truncated {
        /// Offset of the field that does not fit.
        at: usize,
        /// Bytes it needs.
        needed: u64,
        /// Bytes left in the frame from `at`.
        available: usize,
    },
    /// The pair count could not fit in the frame (each pair takes at least 16 bytes).
    #[error("pair count {count} cannot fit in {len} bytes")]
    PairCount {
        /// The count read.
        count: u64,
        /// The frame's length.
        len: usize,
    },
    /// The message has no (database, table) pair.
    #[error("no (database, table) pair")]
    NoTable,
    /// An operation's field count is not a decimal number.
    #[error("field count of key at byte {at} is not a decimal number")]
    FieldCount {
        /// Offset of the count's bytes.
        at: usize,
    },
    /// An operation announces more fields than the message has pairs left.
    #[error("key at byte {at} announces {fields} fields; only {left} pairs follow")]
    MissingFields {
        /// Offset of the operation's key pair.
        at: usize,
        /// Fields announced.
        fields: u64,
        /// Pairs left in the message.
        left: u64,
    },
    /// Bytes follow the last pair the count announced.
    #[error("{0} bytes after the last pair")]
    TrailingBytes(usize),
}

/// Builds one message: pair 0 (database, table), then operations added in order. The count is
/// written by [`Encoder::finish`]. The size is checked as the message grows, so an oversize batch
/// is refused before it takes more than [`MAX_MESSAGE_BYTES`] of memory.
#[derive(Debug)]
pub struct Encoder {
    buf: BytesMut,
    pairs: u64,
    too_large: Option<usize>,
}

impl Encoder {
    /// A message for `table` of `db`.
    pub fn new(db: &[u8], table: &[u8]) -> Encoder {
        Encoder::with_capacity(db, table, 0)
    }

    /// A message for `table` of `db`, with room for `capacity` more bytes (clamped to the limit).
    pub fn with_capacity(db: &[u8], table: &[u8], capacity: usize) -> Encoder {
        let first = LEN + 2 * LEN + db.len() + table.len();
        let capacity = first.saturating_add(capacity).min(MAX_MESSAGE_BYTES);
        let mut enc = Encoder { buf: BytesMut::with_capacity(capacity), pairs: 0, too_large: None };
        enc.buf.put_u64_le(0);
        enc.pair(db, table);
        enc
    }

    fn pair(&mut self, key: &[u8], value: &[u8]) {
        if self.too_large.is_some() {
            return;
        }
        let size =
            self.buf.len().saturating_add(2 * LEN).saturating_add(key.len()).saturating_add(value.len());
        if size >= MAX_MESSAGE_BYTES {
            self.too_large = Some(size);
            return;
        }
        self.buf.put_u64_le(key.len() as u64);
        self.buf.put_slice(key);
        self.buf.put_u64_le(value.len() as u64);
        self.buf.put_slice(value);
        self.pairs += 1;
    }

    /// Adds a SET of `key` to `fields` (a SET with no fields goes out as a DEL, as in SONiC).
    pub fn set<F, V>(&mut self, key: &[u8], fields: &[(F, V)]) -> &mut Encoder
    where
        F: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let mut count = itoa_buf();
        self.pair(key, format_count(&mut count, fields.len()));
        for (f, v) in fields {
            self.pair(f.as_ref(), v.as_ref());
        }
        self
    }

    /// Adds a DEL of `key`.
    pub fn del(&mut self, key: &[u8]) -> &mut Encoder {
        self.pair(key, b"0");
        self
    }

    /// Adds `op`.
    pub fn push(&mut self, op: &Operation) -> &mut Encoder {
        match op.op {
            Op::Set => self.set(&op.key, &op.fields),
            Op::Del => self.del(&op.key),
        }
    }

    /// The message.
    ///
    /// # Errors
    /// [`EncodeError::TooLarge`] if it reached [`MAX_MESSAGE_BYTES`].
    pub fn finish(mut self) -> Result<Bytes, EncodeError> {
        if let Some(size) = self.too_large {
            return Err(EncodeError::TooLarge { size, max: MAX_MESSAGE_BYTES });
        }
        self.buf[..LEN].copy_from_slice(&self.pairs.to_le_bytes());
        Ok(self.buf.freeze())
    }
}

/// Encodes `ops` on `table` of `db` as one message.
///
/// # Errors
/// [`EncodeError::TooLarge`] if the message would reach [`MAX_MESSAGE_BYTES`].
pub fn encode(db: &[u8], table: &[u8], ops: &[Operation]) -> Result<Bytes, EncodeError> {
    let size = ops.iter().fold(0usize, |n, op| {
        n.saturating_add(op.byte_len()).saturating_add((2 + 2 * op.fields.len()) * LEN + 4)
    });
    let mut enc = Encoder::with_capacity(db, table, size);
    for op in ops {
        enc.push(op);
    }
    enc.finish()
}

fn itoa_buf() -> [u8; 20] {
    [0; 20]
}

/// Writes `n` in decimal into `buf`, returning the digits (what C++'s `std::to_string` gives).
fn format_count(buf: &mut [u8; 20], mut n: usize) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// A reader over one frame that checks every length against what is left.
struct Reader<'a> {
    frame: &'a Bytes,
    pos: usize,
}

impl Reader<'_> {
    fn left(&self) -> usize {
        self.frame.len() - self.pos
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let at = self.pos;
        let bytes = self.frame.get(at..at + LEN).ok_or(DecodeError::Truncated {
            at,
            needed: LEN as u64,
            available: self.left(),
        })?;
        let mut raw = [0u8; LEN];
        raw.copy_from_slice(bytes);
        self.pos += LEN;
        Ok(u64::from_le_bytes(raw))
    }

    fn string(&mut self) -> Result<Bytes, DecodeError> {
        let len = self.u64()?;
        let at = self.pos;
        match usize::try_from(len) {
            Ok(n) if n <= self.left() => {
                self.pos += n;
                Ok(self.frame.slice(at..at + n))
            }
            _ => Err(DecodeError::Truncated { at, needed: len, available: self.left() }),
        }
    }
}

/// Parses a field count as SONiC writes it (`std::to_string` of a `size_t`): decimal digits only.
fn parse_count(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0')))
}

/// Decodes one message (one frame).
///
/// # Errors
/// A [`DecodeError`] naming what is wrong and where; nothing is returned from a refused message.
pub fn decode(frame: &Bytes) -> Result<Batch, DecodeError> {
    if frame.len() >= MAX_MESSAGE_BYTES {
        return Err(DecodeError::TooLarge(frame.len()));
    }
    let mut r = Reader { frame, pos: 0 };
    let count = r.u64()?;
    // Every pair takes at least two lengths: a count the frame cannot hold is refused before any
    // pair is read (and before it can size anything).
    if count > (r.left() / (2 * LEN)) as u64 {
        return Err(DecodeError::PairCount { count, len: frame.len() });
    }
    if count == 0 {
        return Err(DecodeError::NoTable);
    }
    let db = r.string()?;
    let table = r.string()?;
    let mut left = count - 1;
    // Sized once, by what the frame can hold: an operation takes at least 17 bytes (a DEL of an
    // empty key: two lengths and "0"), so this never reserves more than the input justifies, and
    // growth by doubling (peak 11× the input in the fuzzer's all-DEL case) is avoided.
    let mut ops = Vec::with_capacity((left as usize).min(r.left() / (2 * LEN + 1)));
    while left > 0 {
        let at = r.pos;
        let key = r.string()?;
        let count_at = r.pos + LEN;
        let n = r.string()?;
        left -= 1;
        let fields = parse_count(&n).ok_or(DecodeError::FieldCount { at: count_at })?;
        if fields > left {
            return Err(DecodeError::MissingFields { at, fields, left });
        }
        if fields == 0 {
            ops.push(Operation { key, op: Op::Del, fields: Vec::new() });
            continue;
        }
        // `fields <= left < count`, and `count` was checked against the frame's length above.
        let mut fvs = Vec::with_capacity(fields as usize);
        for _ in 0..fields {
            let f = r.string()?;
            let v = r.string()?;
            fvs.push((f, v));
        }
        left -= fields;
        ops.push(Operation { key, op: Op::Set, fields: fvs });
    }
    if r.left() != 0 {
        return Err(DecodeError::TrailingBytes(r.left()));
    }
    Ok(Batch { db, table, ops })
}

/// Decodes a received ZeroMQ message, which must be one frame.
///
/// # Errors
/// [`DecodeError::Frames`] for a message of other than one frame; otherwise as [`decode`].
pub fn decode_msg(msg: &zmtp::Msg) -> Result<Batch, DecodeError> {
    match msg.frames() {
        [frame] => decode(frame),
        frames => Err(DecodeError::Frames(frames.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let ops = vec![
            Operation::set("k1", [("f", "v"), ("g", "")]),
            Operation::del("k2"),
            Operation::set("k3", Vec::<(Bytes, Bytes)>::new()),
        ];
        let wire = encode(b"APPL_DB", b"T", &ops).unwrap();
        let batch = decode(&wire).unwrap();
        assert_eq!(batch.db, "APPL_DB");
        assert_eq!(batch.table, "T");
        assert_eq!(batch.ops.len(), 3);
        assert_eq!(batch.ops[0], ops[0]);
        assert_eq!(batch.ops[1], ops[1]);
        assert_eq!(batch.ops[2], Operation::del("k3"));
    }

    #[test]
    fn counts() {
        let mut b = itoa_buf();
        assert_eq!(format_count(&mut b, 0), b"0");
        assert_eq!(format_count(&mut b, 1234), b"1234");
        assert_eq!(format_count(&mut b, usize::MAX), usize::MAX.to_string().as_bytes());
        assert_eq!(parse_count(b"10"), Some(10));
        for bad in [&b""[..], b"-1", b"1a", b" 1", b"+1", b"99999999999999999999"] {
            assert_eq!(parse_count(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn too_large() {
        let big = vec![0u8; MAX_MESSAGE_BYTES];
        let e = encode(b"D", b"T", &[Operation::set("k", [(Bytes::from(big), Bytes::new())])]);
        assert!(matches!(e, Err(EncodeError::TooLarge { .. })));
    }
}
