//! A counting global allocator for test binaries: live and peak heap bytes per thread, so tests
//! running in parallel threads do not disturb each other's measurements. Include it with
//! `#[path = "support/counting_alloc.rs"] mod counting_alloc;`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    /// Heap bytes allocated and not yet freed by this thread.
    static LIVE: Cell<i64> = const { Cell::new(0) };
    /// The highest `LIVE` since the last reset.
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

/// Heap bytes allocated and not yet freed by the whole process (for tests whose work spans threads).
static PROCESS_LIVE: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

fn track(delta: i64) {
    PROCESS_LIVE.fetch_add(delta, std::sync::atomic::Ordering::Relaxed);
    // `try_with`: allocations during thread teardown, after the thread-locals are gone, are not counted.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

/// `System`, counting every byte each thread allocates and frees.
struct Counting;

// SAFETY: every method forwards to `System` with the caller's arguments; the bookkeeping uses
// const-initialized thread-locals of `Cell<i64>`, which never allocate.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        track(layout.size() as i64);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        track(layout.size() as i64);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        track(-(layout.size() as i64));
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        track(new_size as i64 - layout.size() as i64);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Builds the scenario's state with `setup` (not measured), then returns how far this thread's live
/// heap bytes rose above their level before `run` while it ran (`run` drops its state at the end, so
/// freeing it never hides the peak).
pub fn peak_growth<S>(setup: impl FnOnce() -> S, run: impl FnOnce(S)) -> u64 {
    let state = setup();
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    run(state);
    u64::try_from(PEAK.with(Cell::get) - base).unwrap()
}

/// Heap bytes this thread has allocated and not yet freed.
#[allow(dead_code)]
pub fn live_bytes() -> i64 {
    LIVE.with(Cell::get)
}

/// Heap bytes the whole process has allocated and not yet freed.
#[allow(dead_code)]
pub fn process_live_bytes() -> i64 {
    PROCESS_LIVE.load(std::sync::atomic::Ordering::Relaxed)
}
