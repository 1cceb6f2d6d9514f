//! Connections are served by workers: a thread per core, each running a
//! current-thread runtime of its own, as nginx runs a worker process per
//! core. One acceptor hands each new connection to the worker with the
//! fewest open; the connection, and every task its requests spawn (shared
//! fetches, muxers), stays there.
//!
//! Why not tokio's multi-thread runtime: on a hot small answer it spent a
//! quarter of reelay's user-space CPU moving tasks between threads and
//! waking them (`/health` on 2 cores: user CPU per request 5.6 → 4.1 µs,
//! +10–20% requests per second; BENCHMARKS.md, "Workers"). Why one acceptor
//! rather than a `SO_REUSEPORT` listener per worker: the kernel would spread
//! connections by a hash of their addresses, not by load, and a second
//! instance started on the same port by mistake would silently take half
//! the traffic instead of failing to bind.
//!
//! The runtime that calls [`Workers::start`] keeps the acceptor and the
//! background tasks (Redis upkeep, health, the status board, updates).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// The serving threads. Dropping it stops them, and with them whatever
/// their runtimes still hold.
pub struct Workers {
    /// One per thread, in start order.
    workers: Vec<Worker>,
}

struct Worker {
    /// Where its connections are spawned.
    handle: Handle,
    /// Connections open on it, for picking the least loaded.
    open: Arc<AtomicUsize>,
    /// Dropped (or sent) to stop it.
    _stop: oneshot::Sender<()>,
}

/// Holds a worker's count of open connections up while the connection lives.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Workers {
    /// Starts `n` workers (0: one per CPU).
    pub fn start(n: u16) -> std::io::Result<Self> {
        let n = match n {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => usize::from(n),
        };
        let mut workers = Vec::with_capacity(n);
        for i in 0..n {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let handle = runtime.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            std::thread::Builder::new().name(format!("reelay-worker-{i}")).spawn(move || {
                let _ = runtime.block_on(stopped);
                // Blocking tasks still running (a file read) are not waited for.
                runtime.shutdown_background();
            })?;
            workers.push(Worker { handle, open: Arc::new(AtomicUsize::new(0)), _stop: stop });
        }
        Ok(Workers { workers })
    }

    /// Runs `conn` on the worker with the fewest open connections, counted
    /// there until it ends (or is dropped with the worker).
    pub fn spawn(&self, conn: impl Future<Output = ()> + Send + 'static) {
        let worker = self.workers.iter().min_by_key(|w| w.open.load(Ordering::Relaxed)).expect("at least one worker");
        worker.open.fetch_add(1, Ordering::Relaxed);
        let open = Open(worker.open.clone());
        worker.handle.spawn(async move {
            let _open = open;
            conn.await;
        });
    }

    /// The workers' runtimes, for counting their tasks.
    pub fn handles(&self) -> Vec<Handle> {
        self.workers.iter().map(|w| w.handle.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connections_go_to_the_least_loaded_worker_and_run_off_the_caller() {
        let workers = Workers::start(2).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (release, held) = tokio::sync::watch::channel(false);
        for _ in 0..4 {
            let tx = tx.clone();
            let mut held = held.clone();
            workers.spawn(async move {
                tx.send(std::thread::current().name().unwrap_or_default().to_owned()).unwrap();
                let _ = held.wait_for(|r| *r).await;
            });
        }
        let mut names = Vec::new();
        for _ in 0..4 {
            names.push(rx.recv().await.unwrap());
        }
        names.sort();
        assert_eq!(names, ["reelay-worker-0", "reelay-worker-0", "reelay-worker-1", "reelay-worker-1"]);
        let _ = release.send(true);
        for w in &workers.workers {
            while w.open.load(Ordering::Relaxed) > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
    }
}
