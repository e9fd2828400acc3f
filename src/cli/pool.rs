//! The global thread pool, built so that a bad `RAYON_NUM_THREADS` falls back with a note
//! instead of panicking on the first parallel kernel.

use std::io::Write;

/// A note on stderr, best effort: a closed stderr must not stop the command.
fn note(text: std::fmt::Arguments) {
    let _ = writeln!(std::io::stderr(), "note: {text}");
}

/// Threads per core at most: more only adds scheduling and a stack each (8 MiB).
const MAX_THREADS_PER_CORE: usize = 4;

/// The thread count to ask for: `RAYON_NUM_THREADS` when it is a sensible number, else
/// the number of cores (with a note on stderr saying why).
fn thread_count(cores: usize) -> usize {
    let Ok(value) = std::env::var("RAYON_NUM_THREADS") else {
        return cores;
    };
    let max = cores * MAX_THREADS_PER_CORE;
    match value.trim().parse::<usize>() {
        // 0 means "the default" to rayon as well.
        Ok(0) => cores,
        Ok(n) if n <= max => n,
        Ok(n) => {
            note(format_args!(
                "RAYON_NUM_THREADS={n} is more than {MAX_THREADS_PER_CORE} threads per core; using {max}"
            ));
            max
        }
        Err(_) => {
            note(format_args!(
                "RAYON_NUM_THREADS={value:?} is not a number; using {cores} threads"
            ));
            cores
        }
    }
}

/// Builds the pool the command runs on; if the threads cannot be created (memory,
/// limits), retries with one thread per core and then with one thread, so a command never
/// dies of it. A private pool rather than rayon's global one: a failed global build
/// cannot be retried, and the first parallel kernel would then panic.
pub fn build() -> Option<rayon::ThreadPool> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let wanted = thread_count(cores);
    let mut tries = vec![wanted, cores.min(wanted), 1];
    tries.dedup();
    for n in tries {
        // Worker threads get the main thread's stack size, since commands run on them.
        let built = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .stack_size(8 << 20)
            .build();
        match built {
            Ok(pool) => return Some(pool),
            Err(e) => note(format_args!("could not start {n} threads ({e})")),
        }
    }
    None
}
