//! Who owns the two cores: one rule for every kernel.
//!
//! A kernel splits its work across rayon's threads only when it is not itself one task
//! of an outer split. The batch loops of the convolution mark their per-sample tasks
//! with [`as_task`]; a GEMM or convolution called inside such a task stays on its
//! thread, where a nested split would only add scheduling overhead (and, for a GEMM
//! split by columns, scratch copies). This replaces "am I on a rayon worker?", which
//! wrongly forbids splitting when a whole computation runs on the pool (as the
//! command-line tool and `explain` do, to avoid waking the pool from outside for every
//! kernel).

use std::cell::Cell;

thread_local! {
    static IN_TASK: Cell<bool> = const { Cell::new(false) };
}

/// Whether a kernel called here may split its work across threads.
pub fn may_split() -> bool {
    rayon::current_num_threads() > 1 && !IN_TASK.with(Cell::get)
}

/// Runs `f` as one task of a split: kernels called inside it stay on this thread.
pub fn as_task<R>(f: impl FnOnce() -> R) -> R {
    /// Restores the flag even if `f` panics.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            IN_TASK.with(|t| t.set(self.0));
        }
    }
    let _restore = Restore(IN_TASK.with(|t| t.replace(true)));
    f()
}

/// Runs `f` on a thread of rayon's pool (directly if this already is one), so that the
/// kernels inside it split their work with `join` from a worker (the caller runs one half
/// and takes the other back if no thread is free) instead of handing every kernel to the
/// pool from outside and sleeping until it is done.
pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() || rayon::current_num_threads() == 1 {
        return f();
    }
    rayon::scope(|_| f())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_do_not_split_and_the_flag_is_restored() {
        let outside = may_split();
        assert_eq!(outside, rayon::current_num_threads() > 1);
        as_task(|| {
            assert!(!may_split());
            as_task(|| assert!(!may_split()));
            assert!(!may_split());
        });
        assert_eq!(may_split(), outside);
        let caught = std::panic::catch_unwind(|| as_task(|| panic!("inside a task")));
        assert!(caught.is_err());
        assert_eq!(may_split(), outside);
    }

    #[test]
    fn on_pool_runs_on_a_worker_and_returns_the_value() {
        let (v, index) = on_pool(|| (41 + 1, rayon::current_thread_index()));
        assert_eq!(v, 42);
        if rayon::current_num_threads() > 1 {
            assert!(index.is_some());
        }
    }
}
