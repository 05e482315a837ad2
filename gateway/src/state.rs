//! The process-wide state every part of the gateway shares: the current [`Runtime`] (swapped on
//! reload) and the metrics. Its own module, below the listener (`server`), the request path
//! (`service`, `request`, `endpoints`), the admin listener and `reload`, so none of them
//! imports another for it.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::reload_scope::StartOnly;
use crate::metrics::Metrics;
use crate::runtime::Runtime;

/// The process-wide state: the current runtime (swapped on reload; it holds the upstream
/// connection pool) and the metrics.
pub struct Gateway {
    pub(crate) runtime: ArcSwap<Runtime>,
    pub(crate) metrics: Arc<Metrics>,
    /// The values of the keys a reload cannot change, as the process started with them.
    pub(crate) started_with: StartOnly,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("version", &self.runtime.load().version())
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// A gateway serving `runtime`.
    pub fn new(runtime: Runtime, metrics: Arc<Metrics>) -> Arc<Gateway> {
        metrics.set_config_version(runtime.version());
        Arc::new(Gateway {
            started_with: runtime.start_only.clone(),
            runtime: ArcSwap::from_pointee(runtime),
            metrics,
        })
    }

    /// The runtime new requests get.
    pub fn current(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    /// Makes `runtime` the one new requests get; requests in flight keep theirs.
    pub fn install(&self, runtime: Runtime) {
        self.metrics.set_config_version(runtime.version());
        self.runtime.store(Arc::new(runtime));
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
}
