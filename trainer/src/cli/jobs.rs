//! Many `keel train` runs at once: child processes (each training is effectively single-threaded,
//! and a crash or an exit code stays with its run), `jobs` at a time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Calls `run(i, item)` for every item on `jobs` threads; returns the errors, in no order.
pub fn parallel<T: Sync>(
    items: &[T],
    jobs: usize,
    run: impl Fn(usize, &T) -> anyhow::Result<()> + Sync,
) -> Vec<String> {
    let next = AtomicUsize::new(0);
    let errors = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                if let Err(e) = run(i, item) {
                    errors.lock().unwrap().push(format!("{e:#}"));
                }
            });
        }
    });
    errors.into_inner().unwrap()
}
