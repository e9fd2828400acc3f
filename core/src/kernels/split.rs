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

/// `f` applied to every item, results in item order. With `side_by_side` (and splitting
/// allowed here) the items run in parallel on the pool, each call one task whose kernels
/// stay on its thread: for large independent pieces of work (whole photos) that beats
/// splitting every kernel of one piece across the threads. Otherwise in order, here.
pub fn map_items<T: Send, E: Send>(
    items: &[usize],
    side_by_side: bool,
    f: impl Fn(usize) -> Result<T, E> + Sync,
) -> Result<Vec<T>, E> {
    if side_by_side && items.len() > 1 && may_split() {
        use rayon::prelude::*;
        on_pool(|| items.par_iter().map(|&i| as_task(|| f(i))).collect())
    } else {
        items.iter().map(|&i| f(i)).collect()
    }
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
    fn items_side_by_side_come_back_in_order_as_tasks() {
        let items: Vec<usize> = (0..40).collect();
        let out: Result<Vec<(usize, bool)>, ()> =
            map_items(&items, true, |i| Ok((i * i, may_split())));
        let out = out.unwrap();
        assert_eq!(
            out.iter().map(|p| p.0).collect::<Vec<_>>(),
            items.iter().map(|i| i * i).collect::<Vec<_>>()
        );
        if rayon::current_num_threads() > 1 {
            assert!(out.iter().all(|p| !p.1), "each item is one task");
        }
        let failed: Result<Vec<usize>, usize> =
            map_items(&items, true, |i| if i == 17 { Err(i) } else { Ok(i) });
        assert_eq!(failed, Err(17));
        let serial: Result<Vec<bool>, ()> = map_items(&items, false, |_| Ok(may_split()));
        assert!(serial.unwrap().iter().all(|&m| m == may_split()));
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
