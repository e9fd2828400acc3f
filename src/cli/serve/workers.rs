//! A fixed set of worker threads fed by a bounded queue: explanations run here, off the
//! threads that read and write connections, and a burst beyond the queue is refused.

use rayon::ThreadPool;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// The worker threads and their queue.
pub struct Workers {
    jobs: SyncSender<Job>,
}

/// Why a job produced no value.
#[derive(Debug)]
pub enum JobError {
    /// The queue is full: the server is busy.
    Busy,
    /// The job panicked (the panic is reported on stderr; the worker lives on).
    Panicked,
}

impl Workers {
    /// Starts `count` threads that take jobs from a queue of `capacity`; jobs run on
    /// `pool` (the kernels' rayon pool) when there is one.
    pub fn start(
        count: usize,
        capacity: usize,
        pool: Option<Arc<ThreadPool>>,
    ) -> std::io::Result<Workers> {
        let (jobs, queue) = sync_channel::<Job>(capacity);
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..count {
            let queue = Arc::clone(&queue);
            let pool = pool.clone();
            std::thread::Builder::new()
                .name(format!("serve-worker-{i}"))
                .spawn(move || work(&queue, pool.as_deref()))?;
        }
        Ok(Workers { jobs })
    }

    /// Queues `f` at once, and returns a future of its value that blocks no thread. A full
    /// queue is refused at once ([`JobError::Busy`]); a panic in `f` is caught.
    pub fn submit<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<impl std::future::Future<Output = Result<T, JobError>>, JobError> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let value = catch_unwind(AssertUnwindSafe(f));
            // The client may have gone: nobody waits for the value then.
            let _ = tx.send(value);
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                return Err(JobError::Busy)
            }
        }
        Ok(async move {
            match rx.await {
                Ok(Ok(value)) => Ok(value),
                // A dropped sender means the job's thread died mid-job: a panic all the same.
                Ok(Err(_)) | Err(_) => Err(JobError::Panicked),
            }
        })
    }
}

/// One worker: takes jobs until the queue is closed. Jobs run on the kernels' pool so
/// that their kernels split across its threads.
fn work(queue: &Mutex<Receiver<Job>>, pool: Option<&ThreadPool>) {
    loop {
        // The lock is held only while waiting for the next job, never while running one.
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok(job) = job else { return };
        let run = || relprop::core::kernels::split::on_pool(job);
        match pool {
            Some(pool) => pool.install(run),
            None => run(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn jobs_return_values_and_panics_are_caught() {
        let w = Workers::start(1, 4, None).unwrap();
        assert_eq!(block_on(w.submit(|| 6 * 7).unwrap()).unwrap(), 42);
        let r: Result<(), _> = block_on(w.submit(|| panic!("inside a job")).unwrap());
        assert!(matches!(r, Err(JobError::Panicked)));
        // The worker survived the panic.
        assert_eq!(block_on(w.submit(|| 1).unwrap()).unwrap(), 1);
    }

    #[test]
    fn a_full_queue_is_refused_at_once() {
        let w = Workers::start(1, 1, None).unwrap();
        let (started_tx, started) = std::sync::mpsc::channel::<()>();
        let (release, wait) = std::sync::mpsc::channel::<()>();
        // One job occupies the worker, one fills the queue; the third is refused.
        let first = w
            .submit(move || {
                started_tx.send(()).unwrap();
                wait.recv().unwrap();
            })
            .unwrap();
        started.recv().unwrap();
        let second = w.submit(|| 2).unwrap();
        assert!(matches!(w.submit(|| 3), Err(JobError::Busy)));
        release.send(()).unwrap();
        assert!(block_on(first).is_ok());
        assert_eq!(block_on(second).unwrap(), 2);
    }
}
