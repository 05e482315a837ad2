//! Prometheus metrics of the gateway, served on the admin listener's `/metrics`.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use thread_local::ThreadLocal;

type Labels = Vec<(&'static str, String)>;

/// The labels of `gateway_requests`: known at compile time, so counting a request allocates
/// nothing.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    decision: &'static str,
    status: u16,
}

/// A label set of one fixed (`&'static`) value, such as a decision or a reason.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabel {
    decision: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: u16,
}

/// The gateway's metrics; one per process, shared by every request and reload. Every label
/// takes its values from a fixed set (decisions, reasons, statuses, chain entry names): never a
/// username, path or address.
pub struct Metrics {
    registry: Registry,
    requests: Arc<RequestStats>,
    auth_failures: Family<ReasonLabel, Counter>,
    upstream_errors: Family<StatusLabel, Counter>,
    lockouts_active: Gauge<i64, std::sync::atomic::AtomicI64>,
    decisions: Family<Labels, Counter>,
    backend_latency: Family<Labels, Histogram>,
    reloads: Family<Labels, Counter>,
    config_version: Gauge<i64, std::sync::atomic::AtomicI64>,
    active_sessions: Gauge<i64, std::sync::atomic::AtomicI64>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set of metrics, registered under the `gateway_` prefix.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("gateway");
        let requests = Arc::new(RequestStats::new());
        registry.register(
            "requests",
            "Requests by gateway decision and response status",
            RequestCounts(requests.clone()),
        );
        registry.register(
            "request_duration_seconds",
            "Time from the request's arrival to its response head, by gateway decision",
            RequestDurations(requests.clone()),
        );
        let auth_failures = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "auth_failures",
            "Failed logins (form, Basic, bearer, API key) by reason: wrong_password, \
             unknown_user, locked, policy, denied, backend_error, cached_failure",
            auth_failures.clone(),
        );
        let upstream_errors = Family::<StatusLabel, Counter>::default();
        registry.register(
            "upstream_errors",
            "Requests the upstream failed (502: unreachable or broken answer, 504: timed out), \
             by the status sent",
            upstream_errors.clone(),
        );
        let lockouts_active = Gauge::default();
        registry.register(
            "lockouts_active",
            "Lockouts in force (user and client), read from the lockout store at each scrape",
            lockouts_active.clone(),
        );
        let build_info = Family::<Vec<(&'static str, &'static str)>, Gauge>::default();
        registry.register(
            "build_info",
            "Always 1; the version and commit of the running binary",
            build_info.clone(),
        );
        build_info
            .get_or_create(&vec![
                ("version", env!("CARGO_PKG_VERSION")),
                ("commit", env!("AUTHGATE_COMMIT")),
            ])
            .set(1);
        registry.register_collector(Box::new(AuditDropped));
        registry.register_collector(Box::new(LogDropped));
        let decisions = Family::<Labels, Counter>::default();
        registry.register(
            "backend_decisions",
            "Backend outcomes by chain entry",
            decisions.clone(),
        );
        let backend_latency =
            Family::<Labels, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        registry.register(
            "backend_latency_seconds",
            "Time one backend took to answer, by chain entry",
            backend_latency.clone(),
        );
        let reloads = Family::<Labels, Counter>::default();
        registry.register("reloads", "Config reloads by result", reloads.clone());
        let config_version = Gauge::default();
        registry.register(
            "config_version",
            "Version number of the config being served",
            config_version.clone(),
        );
        let active_sessions = Gauge::default();
        registry.register(
            "active_sessions",
            "Sessions in the store (when the store can tell)",
            active_sessions.clone(),
        );
        registry.register_collector(Box::new(PasswordRefusals));
        Metrics {
            registry,
            requests,
            auth_failures,
            upstream_errors,
            lockouts_active,
            decisions,
            backend_latency,
            reloads,
            config_version,
            active_sessions,
        }
    }

    /// Counts one finished request and records how long it took until its response head.
    pub(crate) fn request(&self, decision: &'static str, status: u16, took: std::time::Duration) {
        self.requests.record(decision, status, took.as_secs_f64());
    }

    /// Counts one failed login.
    pub(crate) fn auth_failure(&self, reason: crate::audit::FailureReason) {
        self.auth_failures
            .get_or_create(&ReasonLabel {
                reason: reason.label(),
            })
            .inc();
    }

    /// Counts one request the upstream failed, by the status the client got.
    pub(crate) fn upstream_error(&self, status: u16) {
        self.upstream_errors
            .get_or_create(&StatusLabel { status })
            .inc();
    }

    /// Sets the number of lockouts in force.
    pub(crate) fn set_lockouts_active(&self, n: usize) {
        self.lockouts_active
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Records one backend step of a chain run.
    pub(crate) fn backend_step(&self, step: &auth_core::TraceStep) {
        self.decisions
            .get_or_create(&vec![
                ("entry", step.entry.clone()),
                ("outcome", step.outcome.to_string()),
            ])
            .inc();
        if step.outcome != "skipped" {
            self.backend_latency
                .get_or_create(&vec![("entry", step.entry.clone())])
                .observe(step.elapsed.as_secs_f64());
        }
    }

    /// Counts a reload attempt (`ok` or `error`).
    pub(crate) fn reload(&self, result: &str) {
        self.reloads
            .get_or_create(&vec![("result", result.to_string())])
            .inc();
    }

    /// Sets the served config version.
    pub(crate) fn set_config_version(&self, version: u64) {
        self.config_version
            .set(i64::try_from(version).unwrap_or(i64::MAX));
    }

    /// Sets the number of active sessions.
    pub(crate) fn set_active_sessions(&self, n: u64) {
        self.active_sessions
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// `gateway_password_refusals_total{reason}`: logins refused because the user's stored hash
/// cannot be used, read from auth-core's counters at each scrape (a fixed set of reasons).
#[derive(Debug)]
struct PasswordRefusals;

impl Collector for PasswordRefusals {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "password_refusals",
            "Logins refused because the user's stored password hash cannot be used (empty, \
             unusable, weak, unknown or malformed format), by reason",
            None,
            MetricType::Counter,
        )?;
        for (reason, count) in auth_core::password::refusal_counts() {
            let labels = [("reason", reason)];
            ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// `gateway_audit_dropped_total`: audit lines dropped because the writer could not keep up.
#[derive(Debug)]
struct AuditDropped;

impl Collector for AuditDropped {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counter = ConstCounter::new(crate::audit::dropped());
        let metric = encoder.encode_descriptor(
            "audit_dropped",
            "Audit lines dropped because the audit writer could not keep up or failed to write",
            None,
            MetricType::Counter,
        )?;
        counter.encode(metric)
    }
}

/// `gateway_log_dropped_total`: log lines (access log included) dropped because the stderr
/// writer could not keep up.
#[derive(Debug)]
struct LogDropped;

impl Collector for LogDropped {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counter = ConstCounter::new(crate::server::log_dropped());
        let metric = encoder.encode_descriptor(
            "log_dropped",
            "Log lines (access log included) dropped because the stderr writer could not keep up",
            None,
            MetricType::Counter,
        )?;
        counter.encode(metric)
    }
}

fn latency_histogram() -> Histogram {
    Histogram::new(latency_buckets())
}

/// The upper bounds of the latency histograms' buckets (without the last, infinite one).
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.001, 2.0, 14)
}

/// `gateway_requests_total` and `gateway_request_duration_seconds`, counted per thread and
/// summed when scraped: every request counts itself, and a shared counter (or the read lock of
/// a `Family` and the write lock of a `Histogram`) would be a cache line every core writes to on
/// every request. Each thread writes its own shard; its lock is only ever contended by a scrape.
/// A thread's shard outlives the thread (`thread_local` hands it to the next thread), so no count
/// is lost.
struct RequestStats {
    shards: ThreadLocal<StatsShard>,
    /// Bucket upper bounds, the last one `f64::MAX` (as `Histogram` keeps them).
    bounds: Vec<f64>,
}

/// One thread's counts, on cache lines of its own.
#[repr(align(128))]
#[derive(Default)]
struct StatsShard(Mutex<ThreadStats>);

impl StatsShard {
    fn lock(&self) -> MutexGuard<'_, ThreadStats> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A handful of entries (decisions x statuses seen): a linear scan beats hashing.
#[derive(Default)]
struct ThreadStats {
    requests: Vec<(RequestLabels, u64)>,
    durations: Vec<(&'static str, HistogramCounts)>,
}

#[derive(Clone)]
struct HistogramCounts {
    sum: f64,
    count: u64,
    /// Observations per bucket (not cumulative), as `bounds`.
    buckets: Vec<u64>,
}

impl HistogramCounts {
    fn new(buckets: usize) -> Self {
        HistogramCounts {
            sum: 0.0,
            count: 0,
            buckets: vec![0; buckets],
        }
    }

    fn add(&mut self, other: &HistogramCounts) {
        self.sum += other.sum;
        self.count += other.count;
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
    }
}

/// Whether two decision labels are the same: usually the very same `&'static str`.
fn same(a: &str, b: &str) -> bool {
    std::ptr::eq(a, b) || a == b
}

impl RequestStats {
    fn new() -> Self {
        RequestStats {
            shards: ThreadLocal::new(),
            bounds: latency_buckets().chain(std::iter::once(f64::MAX)).collect(),
        }
    }

    fn record(&self, decision: &'static str, status: u16, seconds: f64) {
        let mut stats = self.shards.get_or(StatsShard::default).lock();
        match stats
            .requests
            .iter_mut()
            .find(|(l, _)| l.status == status && same(l.decision, decision))
        {
            Some((_, n)) => *n += 1,
            None => stats.requests.push((RequestLabels { decision, status }, 1)),
        }
        let histogram = match stats.durations.iter().position(|(d, _)| same(d, decision)) {
            Some(i) => &mut stats.durations[i].1,
            None => {
                stats
                    .durations
                    .push((decision, HistogramCounts::new(self.bounds.len())));
                let last = stats.durations.len() - 1;
                &mut stats.durations[last].1
            }
        };
        histogram.sum += seconds;
        histogram.count += 1;
        // As `Histogram::observe`: the first bucket whose bound is at least the value.
        if let Some(i) = self.bounds.iter().position(|b| *b >= seconds) {
            histogram.buckets[i] += 1;
        }
    }

    /// Every thread's request counts, summed per label set.
    fn requests(&self) -> Vec<(RequestLabels, u64)> {
        let mut total: Vec<(RequestLabels, u64)> = Vec::new();
        for shard in self.shards.iter() {
            for (labels, n) in &shard.lock().requests {
                match total.iter_mut().find(|(l, _)| l == labels) {
                    Some((_, t)) => *t += n,
                    None => total.push((labels.clone(), *n)),
                }
            }
        }
        total
    }

    /// Every thread's durations, summed per decision.
    fn durations(&self) -> Vec<(&'static str, HistogramCounts)> {
        let mut total: Vec<(&'static str, HistogramCounts)> = Vec::new();
        for shard in self.shards.iter() {
            for (decision, h) in &shard.lock().durations {
                match total.iter_mut().find(|(d, _)| same(d, decision)) {
                    Some((_, t)) => t.add(h),
                    None => total.push((decision, h.clone())),
                }
            }
        }
        total
    }
}

/// `gateway_requests_total{decision,status}`, encoded as a `Family<_, Counter>` would be.
#[derive(Debug)]
struct RequestCounts(Arc<RequestStats>);

/// `gateway_request_duration_seconds{decision}`, encoded as a `Family<_, Histogram>` would be.
#[derive(Debug)]
struct RequestDurations(Arc<RequestStats>);

impl std::fmt::Debug for RequestStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestStats").finish_non_exhaustive()
    }
}

impl EncodeMetric for RequestCounts {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (labels, n) in self.0.requests() {
            encoder
                .encode_family(&labels)?
                .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

impl EncodeMetric for RequestDurations {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (decision, h) in self.0.durations() {
            let buckets: Vec<(f64, u64)> = self
                .0
                .bounds
                .iter()
                .copied()
                .zip(h.buckets.iter().copied())
                .collect();
            encoder
                .encode_family(&DecisionLabel { decision })?
                .encode_histogram::<NoLabelSet>(h.sum, h.count, &buckets, None)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-thread request metrics encode exactly as the `Family`s they replace, whatever
    /// threads counted the requests.
    #[test]
    fn request_metrics_encode_as_prometheus_families() {
        // Binary fractions, so that sums do not depend on the order they are added in.
        let samples: [(&'static str, u16, f64); 7] = [
            ("public", 200, 0.000_488_281_25),
            ("allowed", 200, 0.003_906_25),
            ("allowed", 200, 0.015_625),
            ("allowed", 404, 9.5),
            ("challenged", 302, 100.0),
            ("public", 200, 0.000_976_562_5),
            ("allowed", 200, 0.0),
        ];
        let stats = Arc::new(RequestStats::new());
        let mut ours = Registry::with_prefix("gateway");
        ours.register("requests", "r", RequestCounts(stats.clone()));
        ours.register(
            "request_duration_seconds",
            "d",
            RequestDurations(stats.clone()),
        );
        let counts = Family::<RequestLabels, Counter>::default();
        let durations = Family::<DecisionLabel, Histogram>::new_with_constructor(
            latency_histogram as fn() -> _,
        );
        let mut theirs = Registry::with_prefix("gateway");
        theirs.register("requests", "r", counts.clone());
        theirs.register("request_duration_seconds", "d", durations.clone());
        std::thread::scope(|scope| {
            for thread in 0..3 {
                let stats = &stats;
                scope.spawn(move || {
                    for (i, (decision, status, seconds)) in samples.iter().enumerate() {
                        if i % 3 != thread {
                            stats.record(decision, *status, *seconds);
                        }
                    }
                });
            }
        });
        for (i, (decision, status, seconds)) in samples.iter().enumerate() {
            for thread in 0..3 {
                if i % 3 != thread {
                    counts
                        .get_or_create(&RequestLabels {
                            decision,
                            status: *status,
                        })
                        .inc();
                    durations
                        .get_or_create(&DecisionLabel { decision })
                        .observe(*seconds);
                }
            }
        }
        let lines = |registry: &Registry| {
            let mut text = String::new();
            encode(&mut text, registry).expect("encodes");
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            lines.sort();
            lines
        };
        let ours = lines(&ours);
        assert_eq!(ours, lines(&theirs));
        assert!(
            ours.contains(&"gateway_requests_total{decision=\"allowed\",status=\"200\"} 6".into()),
            "{ours:#?}"
        );
    }

    #[test]
    fn password_refusals_are_exported_for_every_reason() {
        let text = Metrics::new().encode();
        for reason in auth_core::password::REFUSAL_REASONS {
            assert!(
                text.contains(&format!(
                    "gateway_password_refusals_total{{reason=\"{reason}\"}}"
                )),
                "{reason}:\n{text}"
            );
        }
    }
}
