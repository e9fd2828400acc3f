//! Allocation accounting: a counting global allocator, per thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

/// Counts live bytes per thread and remembers the peak and the largest single request.
pub(crate) struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

/// Single requests above this are refused (the process then aborts with the size).
pub(crate) const REFUSED: usize = 1 << 32;

pub(crate) fn on_alloc(size: usize) {
    let _ = LIVE.try_with(|l| {
        let v = l.get() + size;
        l.set(v);
        let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
    });
    let _ = LARGEST.try_with(|m| m.set(m.get().max(size)));
}

pub(crate) fn on_free(size: usize) {
    // Memory freed on another thread than it was allocated on only lowers this count.
    let _ = LIVE.try_with(|l| l.set(l.get().saturating_sub(size)));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > REFUSED {
            return std::ptr::null_mut();
        }
        let p = System.alloc(layout);
        if !p.is_null() {
            on_alloc(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > REFUSED {
            return std::ptr::null_mut();
        }
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            on_alloc(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        on_free(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > REFUSED {
            return std::ptr::null_mut();
        }
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            on_free(layout.size());
            on_alloc(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// What one call cost: peak live bytes above the start, largest single request, time.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Usage {
    pub(crate) peak: usize,
    pub(crate) largest: usize,
    pub(crate) elapsed: Duration,
}

pub(crate) fn measure<T>(f: impl FnOnce() -> T) -> (T, Usage) {
    let start = LIVE.with(|l| l.get());
    PEAK.with(|p| p.set(start));
    LARGEST.with(|m| m.set(0));
    let t = Instant::now();
    let out = f();
    let elapsed = t.elapsed();
    let usage = Usage {
        peak: PEAK.with(|p| p.get()).saturating_sub(start),
        largest: LARGEST.with(|m| m.get()),
        elapsed,
    };
    (out, usage)
}
