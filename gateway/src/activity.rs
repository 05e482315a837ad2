//! Per-connection activity: how many requests (with their response bodies) and tunnels are open
//! on one connection, so a connection with none open for a while can be closed. hyper closes an
//! idle HTTP/1.1 keep-alive connection itself (`header_read_timeout`); an HTTP/2 connection
//! without streams, and a connection that never sends its first bytes, it would keep forever.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

/// The open work of one connection. Cheap per request (two atomics and a clock read); the
/// watchdog wakes about once per idle period, never per request.
#[derive(Debug)]
pub(crate) struct Activity {
    open: AtomicUsize,
    born: Instant,
    /// Milliseconds after `born` when something open last ended.
    last_end_ms: AtomicU64,
}

impl Activity {
    /// A connection with nothing open yet.
    pub(crate) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            open: AtomicUsize::new(0),
            born: Instant::now(),
            last_end_ms: AtomicU64::new(0),
        })
    }

    /// Counts one more open request or tunnel until the guard is dropped.
    pub(crate) fn enter(self: &Arc<Self>) -> ActiveGuard {
        self.open.fetch_add(1, Ordering::SeqCst);
        ActiveGuard(self.clone())
    }

    fn since_born(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Resolves once nothing has been open for `idle` in a row.
    pub(crate) async fn idle_for(&self, idle: Duration) {
        let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        let mut deadline = Instant::now() + idle;
        loop {
            tokio::time::sleep_until(deadline).await;
            if self.open.load(Ordering::SeqCst) > 0 {
                deadline = Instant::now() + idle;
                continue;
            }
            let idle_from = self.last_end_ms.load(Ordering::SeqCst);
            let now = self.since_born();
            if now.saturating_sub(idle_from) >= idle_ms {
                return;
            }
            deadline = self.born + Duration::from_millis(idle_from.saturating_add(idle_ms));
        }
    }
}

/// One open request or tunnel of a connection.
#[derive(Debug)]
pub(crate) struct ActiveGuard(Arc<Activity>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        // The end time first: the watchdog reading `open == 0` then sees this end, never an older
        // one (which could close the connection right after a long request).
        self.0
            .last_end_ms
            .fetch_max(self.0.since_born(), Ordering::SeqCst);
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that keeps its request counted as open until it is dropped (sent or
/// abandoned).
pub(crate) struct GuardedBody<B> {
    inner: B,
    _guard: ActiveGuard,
}

impl<B> GuardedBody<B> {
    pub(crate) fn new(inner: B, guard: ActiveGuard) -> Self {
        GuardedBody {
            inner,
            _guard: guard,
        }
    }
}

impl<B: hyper::body::Body + Unpin> hyper::body::Body for GuardedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_only_after_nothing_was_open_for_the_whole_period() {
        let ms = Duration::from_millis;
        let a = Activity::new();
        let guard = a.enter();
        let waiting = tokio::spawn({
            let a = a.clone();
            async move { a.idle_for(ms(1000)).await }
        });
        tokio::time::sleep(ms(1500)).await;
        assert!(!waiting.is_finished(), "idle while a request is open");
        drop(guard);
        tokio::time::sleep(ms(600)).await;
        drop(a.enter());
        tokio::time::sleep(ms(600)).await;
        assert!(
            !waiting.is_finished(),
            "a request in between restarts the period"
        );
        tokio::time::sleep(ms(800)).await;
        assert!(waiting.is_finished());
    }
}
