//! Prometheus metrics of the gateway, served on the admin listener's `/metrics`.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

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
    requests: Family<RequestLabels, Counter>,
    request_duration: Family<DecisionLabel, Histogram>,
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
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests by gateway decision and response status",
            requests.clone(),
        );
        let request_duration = Family::<DecisionLabel, Histogram>::new_with_constructor(
            latency_histogram as fn() -> _,
        );
        registry.register(
            "request_duration_seconds",
            "Time from the request's arrival to its response head, by gateway decision",
            request_duration.clone(),
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
            request_duration,
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

    /// Counts one finished request.
    pub(crate) fn request(&self, decision: &'static str, status: u16) {
        self.requests
            .get_or_create(&RequestLabels { decision, status })
            .inc();
    }

    /// Records how long a request took until its response head.
    pub(crate) fn request_duration(&self, decision: &'static str, took: std::time::Duration) {
        self.request_duration
            .get_or_create(&DecisionLabel { decision })
            .observe(took.as_secs_f64());
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
    Histogram::new(exponential_buckets(0.001, 2.0, 14))
}

#[cfg(test)]
mod tests {
    use super::*;

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
