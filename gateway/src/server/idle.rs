//! Per-connection activity: how many requests (with their response bodies) and tunnels are open
//! on one connection, so a connection with none open for a while can be closed. hyper closes an
//! idle HTTP/1.1 keep-alive connection itself (`header_read_timeout`); an HTTP/2 connection
//! without streams, and a connection that never sends its first bytes, it would keep forever.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::Notify;

/// The open work of one connection.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    open: AtomicUsize,
    changed: Notify,
}

impl Activity {
    /// A connection with nothing open yet.
    pub(crate) fn new() -> Arc<Activity> {
        Arc::default()
    }

    /// Counts one more open request or tunnel until the guard is dropped.
    pub(crate) fn enter(self: &Arc<Self>) -> ActiveGuard {
        if self.open.fetch_add(1, Ordering::SeqCst) == 0 {
            self.changed.notify_waiters();
        }
        ActiveGuard(self.clone())
    }

    /// Resolves once nothing has been open for `idle` in a row.
    pub(crate) async fn idle_for(&self, idle: Duration) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.open.load(Ordering::SeqCst) == 0 {
                tokio::select! {
                    () = tokio::time::sleep(idle) => {
                        if self.open.load(Ordering::SeqCst) == 0 {
                            return;
                        }
                    }
                    () = changed => {}
                }
            } else {
                changed.await;
            }
        }
    }
}

/// One open request or tunnel of a connection.
#[derive(Debug)]
pub(crate) struct ActiveGuard(Arc<Activity>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.changed.notify_waiters();
        }
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
