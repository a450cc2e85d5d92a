//! The state-table message decoder (`statetable::wire::decode`, SONiC's `BinarySerializer` format)
//! on arbitrary bytes, as one frame.
//!
//! Invariants:
//! - no panic, whatever the bytes;
//! - what it returns is well-formed: a DEL has no fields, a SET has at least one, and every string
//!   (database, table, key, field, value) is a slice of the frame, not a copy;
//! - encode and decode agree: re-encoding what was decoded succeeds, is no longer than the input (the
//!   only non-canonical form the decoder takes is a field count with leading zeros, which re-encodes
//!   shorter), decodes to the same batch, and re-encodes to the same bytes again;
//! - the decoder's heap stays proportional to the input: peak live bytes during one `decode` at most
//!   `12 * input.len() + 4096` (see `alloc_bound`).
#![no_main]

use std::mem::size_of;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use statetable::wire::{decode, encode, Op, Operation};
use zmtp_fuzz::alloc::{peak_since, start, Counting};

#[global_allocator]
static ALLOC: Counting = Counting;

/// The most heap `decode` may hold at once for an input of `len` bytes.
///
/// What it allocates: the `Vec<Operation>` it returns, grown by doubling as operations are read, and
/// per SET an exact-size `Vec<(Bytes, Bytes)>` of its fields (sized by a count that was checked
/// against the pairs the frame can hold). The strings are slices of the frame (`Bytes::slice`): the
/// first slice of a frame made from a `Vec` allocates its shared header once, a few dozen bytes.
///
/// - Operations: the smallest operation on the wire is a DEL with an empty key, one pair of two
///   8-byte lengths plus the count `"0"`: 17 bytes. An `Operation` is 64 bytes (a `Bytes` key of 32, a
///   `Vec` of 24, the op). While the vector grows from capacity c to 2c, the old and the new block
///   are both live (the counting allocator counts a moving realloc so): 3 × 64 × c bytes for c
///   operations, which took at least 17 × c bytes of input, i.e. 192 / 17 ≈ 11.3 bytes per input
///   byte.
/// - Fields: a (field, value) pair is 64 bytes in memory and at least 16 on the wire (4 per byte);
///   a SET whose pairs run short fails after allocating its vector, at most one such in flight, also
///   bounded by the pairs the frame could hold (4 per byte). Bytes spent on fields are not spent on
///   operations, so the worst case is all-DEL input.
///
/// Hence 12 × len, plus 4 KiB for the constants (a vector's first capacity of 4 operations, the
/// slice header). Measured (`STATETABLE_WIRE_REPORT`, below): all-DEL inputs just past a doubling
/// (the seed `synthetic_dels_past_doubling`) peak at 9.9 × len for 313 bytes, 11.10 × for 2,217 and
/// 11.28 × for 34,857, tending to 192 / 17; the 5-minute run that made the corpus (3.35 million
/// inputs) found nothing above 8.5 ×.
fn alloc_bound(len: usize) -> usize {
    12 * len + 4096
}

/// With `STATETABLE_WIRE_REPORT` set, prints each new highest peak-to-input ratio (inputs of 256
/// bytes or more, where the constant part no longer dominates) and each new highest peak of a
/// shorter input: how the bound above was checked against what the decoder really does
/// (`cargo +nightly fuzz run --debug-assertions statetable_wire fuzz/corpus/statetable_wire -- -runs=0`).
fn report(len: usize, peak: usize) {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    static ON: AtomicUsize = AtomicUsize::new(2);
    static RATIO_MILLI: AtomicUsize = AtomicUsize::new(0);
    static SMALL_PEAK: AtomicUsize = AtomicUsize::new(0);
    if ON.load(Relaxed) == 2 {
        ON.store(usize::from(std::env::var_os("STATETABLE_WIRE_REPORT").is_some()), Relaxed);
    }
    if ON.load(Relaxed) == 0 {
        return;
    }
    if len >= 256 {
        let ratio = peak * 1000 / len;
        if ratio > RATIO_MILLI.fetch_max(ratio, Relaxed) {
            eprintln!(
                "statetable_wire: peak {peak} bytes for {len} input bytes: {:.3} x",
                ratio as f64 / 1000.0
            );
        }
    } else if peak > SMALL_PEAK.fetch_max(peak, Relaxed) {
        eprintln!("statetable_wire: peak {peak} bytes for {len} input bytes (short input)");
    }
}

fuzz_target!(|data: &[u8]| {
    // The frame as the socket hands it over: allocated before the measurement starts.
    let frame = Bytes::copy_from_slice(data);
    let baseline = start();
    let decoded = decode(&frame);
    let peak = peak_since(baseline);
    assert!(
        peak <= alloc_bound(data.len()),
        "decode of {} bytes peaked at {peak} bytes of heap (bound {})",
        data.len(),
        alloc_bound(data.len())
    );
    report(data.len(), peak);
    let Ok(batch) = decoded else { return };

    let range = frame.as_ptr_range();
    let inside = |b: &Bytes| b.is_empty() || (range.start <= b.as_ptr() && b.as_ptr_range().end <= range.end);
    assert!(inside(&batch.db) && inside(&batch.table), "database or table copied");
    for op in &batch.ops {
        assert!(inside(&op.key), "key copied");
        match op.op {
            Op::Del => assert!(op.fields.is_empty(), "a DEL with fields"),
            Op::Set => assert!(!op.fields.is_empty(), "a SET without fields"),
        }
        assert!(op.fields.iter().all(|(f, v)| inside(f) && inside(v)), "field or value copied");
    }
    // alloc_bound's reasoning assumes a 64-byte `Operation`: fail loudly if it grows.
    assert!(size_of::<Operation>() <= 64, "Operation grew: revisit alloc_bound");

    let again = encode(&batch.db, &batch.table, &batch.ops).expect("what was decoded re-encodes");
    assert!(again.len() <= data.len(), "re-encoding grew: {} > {}", again.len(), data.len());
    let batch2 = decode(&again).expect("a re-encoded batch decodes");
    assert_eq!(batch, batch2, "decode(encode(decode(x))) differs from decode(x)");
    let third = encode(&batch2.db, &batch2.table, &batch2.ops).expect("re-encodes");
    assert_eq!(again, third, "encoding is not canonical");
});
