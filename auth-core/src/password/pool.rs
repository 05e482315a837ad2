//! The bounded pool password checks run on: `spawn_blocking` behind a semaphore sized to the
//! CPUs, with a cap on waiting checks so a login storm gets `Busy` (503) instead of a queue that
//! grows until proxied traffic starves.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::Semaphore;

use super::HashError;

/// Sizes of the hashing pool. Set once, before the first verification, with [`configure_pool`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Checks running at once (default: the number of CPUs).
    pub workers: usize,
    /// Checks allowed to wait for a worker; one more gets [`HashError::Busy`]
    /// (default: 32 per worker).
    pub max_queued: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        PoolConfig {
            workers,
            max_queued: workers * 32,
        }
    }
}

struct Pool {
    config: PoolConfig,
    permits: Arc<Semaphore>,
    /// Checks admitted and not finished (running or waiting).
    admitted: AtomicUsize,
}

static POOL: OnceLock<Pool> = OnceLock::new();

fn pool_with(config: PoolConfig) -> Pool {
    let workers = config.workers.max(1);
    Pool {
        config: PoolConfig { workers, ..config },
        permits: Arc::new(Semaphore::new(workers)),
        admitted: AtomicUsize::new(0),
    }
}

fn pool() -> &'static Pool {
    POOL.get_or_init(|| pool_with(PoolConfig::default()))
}

/// Sets the pool's size. Call it at start-up, before any password is checked; returns the
/// configuration in force as `Err` when the pool already exists.
pub fn configure_pool(config: PoolConfig) -> Result<(), PoolConfig> {
    let mut installed = false;
    let current = POOL.get_or_init(|| {
        installed = true;
        pool_with(config)
    });
    if installed {
        Ok(())
    } else {
        Err(current.config)
    }
}

struct Admission(&'static Pool);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Runs `work` on the blocking pool once a worker is free, or answers `Busy` at once.
pub(super) async fn run<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, HashError> {
    let pool = pool();
    let limit = pool.config.workers + pool.config.max_queued;
    if pool.admitted.fetch_add(1, Ordering::AcqRel) >= limit {
        pool.admitted.fetch_sub(1, Ordering::AcqRel);
        return Err(HashError::Busy);
    }
    let admission = Admission(pool);
    let permit = Arc::clone(&pool.permits)
        .acquire_owned()
        .await
        .map_err(|e| HashError::Internal(e.to_string()))?;
    // The admission moves into the task: a caller that gives up (timeout) does not free the slot
    // while the hash is still being computed.
    tokio::task::spawn_blocking(move || {
        lower_thread_priority();
        let result = work();
        drop(permit);
        drop(admission);
        result
    })
    .await
    .map_err(|e| HashError::Internal(e.to_string()))
}

/// Nice value of the threads that hash passwords: a login storm competes with proxied traffic
/// for the same CPUs, and the reactor must win (a waiting login is bounded by the queue; a
/// stalled reactor delays every request).
const HASHING_NICE: i32 = 10;

/// Lowers the calling thread's scheduling priority to [`HASHING_NICE`], once per thread (on
/// Linux the nice value is per thread). The thread stays in tokio's blocking pool afterwards,
/// so other blocking work it runs later is niced too; nothing latency-critical runs there.
fn lower_thread_priority() {
    thread_local! {
        static LOWERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if LOWERED.with(|l| l.replace(true)) {
        return;
    }
    #[cfg(unix)]
    if let Err(e) = rustix::process::setpriority_process(None, HASHING_NICE) {
        tracing::debug!(error = %e, "could not lower the hashing thread's priority");
    }
}
