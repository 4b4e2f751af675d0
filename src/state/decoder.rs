//! The one thread that decodes snapshots.
//!
//! A decoded snapshot is hundreds of megabytes of small allocations (430 MiB of heap at
//! 100,000 resources). glibc's malloc serves each thread from the arena that thread is
//! attached to, and a free returns memory to the arena it came from. When every load
//! decoded on whichever blocking-pool thread tokio handed it, a process that loads state
//! again (a long-lived caller, the plan benchmark) could decode the next snapshot in a new
//! thread's new arena while the last one's memory lay free in the old arena, and its peak
//! RSS grew by a whole snapshot (measured at 100,000 resources under load: 854 -> 1,405 MiB,
//! one run in three). Decoding on one persistent thread keeps every snapshot in one arena,
//! where the next decode reuses the last one's memory.
//!
//! Rules kept here: jobs run one at a time, in the order they are sent; a job that panics
//! is reported to its caller as failed and the thread goes on serving others.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;
use std::sync::mpsc;

use super::StateError;

type Job = Box<dyn FnOnce() + Send>;

/// Why the decoder thread gave no result.
#[derive(Debug, thiserror::Error)]
#[error("the state decoder thread failed: {0}")]
pub struct DecoderError(String);

fn jobs() -> &'static mpsc::Sender<Job> {
    static JOBS: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    JOBS.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("spar-state-decoder".into())
            .spawn(move || {
                for job in rx {
                    // The panic reaches the caller as a dropped result.
                    let _ = catch_unwind(AssertUnwindSafe(job));
                }
            })
            .expect("the state decoder thread starts");
        tx
    })
}

/// Runs the decode `work` on the decoder thread and waits for it without blocking the
/// caller's (async) thread; a decode that could not run is an I/O error on `file`.
pub async fn decode<T: Send + 'static>(
    file: String,
    work: impl FnOnce() -> Result<T, StateError> + Send + 'static,
) -> Result<T, StateError> {
    run(work).await.unwrap_or_else(|e| Err(StateError::io(&file, e)))
}

/// Runs `work` on the decoder thread and waits for its result without blocking the
/// caller's (async) thread.
pub async fn run<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, DecoderError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    jobs()
        .send(Box::new(move || {
            let _ = tx.send(work());
        }))
        .map_err(|_| DecoderError("it is not running".into()))?;
    rx.await.map_err(|_| DecoderError("the decode panicked".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_on_one_thread_in_order_and_a_panic_is_an_error() {
        let first = run(|| std::thread::current().id()).await.unwrap();
        let err = run(|| -> u32 { panic!("a bad state") }).await.unwrap_err();
        assert!(err.to_string().contains("panicked"), "{err}");
        let again = run(|| std::thread::current().id()).await.unwrap();
        assert_eq!(first, again, "every decode runs on the same thread, after a panic too");
        assert_ne!(first, std::thread::current().id());
    }
}
