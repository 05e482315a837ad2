//! Accounts whose stored hash cannot be used: counted by reason (for the gateway's metrics) and
//! logged as one WARN per (entry, user) at most every [`WARN_INTERVAL`], with bounded memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::HashError;

/// At most one WARN per (entry, user) in this interval.
pub(super) const WARN_INTERVAL: Duration = Duration::from_secs(600);
/// Most (entry, user) pairs remembered; past it the oldest is forgotten (it may WARN again).
const MAX_REMEMBERED: usize = 1024;

/// Why a stored hash was refused, as a metric label: a fixed, small set.
pub const REASONS: [&str; 8] = [
    "empty",
    "unusable",
    "unknown_format",
    "format_mismatch",
    "weak_format_refused",
    "cost_too_high",
    "malformed",
    "other",
];

static COUNTS: [AtomicU64; REASONS.len()] = [const { AtomicU64::new(0) }; REASONS.len()];

fn reason_index(error: &HashError) -> usize {
    match error {
        HashError::Empty => 0,
        HashError::Unusable => 1,
        HashError::UnknownFormat { .. } => 2,
        HashError::FormatMismatch { .. } => 3,
        HashError::LegacyRefused { .. } | HashError::DesCryptRefused => 4,
        HashError::CostTooHigh { .. } => 5,
        HashError::Malformed { .. } => 6,
        HashError::Busy | HashError::Internal(_) => 7,
    }
}

/// The metric label of a refused hash (one of [`REASONS`]).
pub(super) fn reason(error: &HashError) -> &'static str {
    REASONS[reason_index(error)]
}

/// How many password checks [`super::verify_stored`] refused since the process started, by
/// reason (every label of [`REASONS`], zeros included): export it as a counter.
pub fn refusal_counts() -> [(&'static str, u64); REASONS.len()] {
    std::array::from_fn(|i| (REASONS[i], COUNTS[i].load(Ordering::Relaxed)))
}

static WARNED: Mutex<Option<HashMap<(String, String), Instant>>> = Mutex::new(None);

/// Whether a WARN for (`entry`, `username`) is due now, remembering that it was given.
fn warn_due(entry: &str, username: &str, now: Instant) -> bool {
    let mut guard = WARNED.lock().unwrap_or_else(|e| e.into_inner());
    let warned = guard.get_or_insert_with(HashMap::new);
    let key = (entry.to_owned(), username.to_owned());
    if let Some(at) = warned.get(&key)
        && now.saturating_duration_since(*at) < WARN_INTERVAL
    {
        return false;
    }
    if warned.len() >= MAX_REMEMBERED && !warned.contains_key(&key) {
        warned.retain(|_, at| now.saturating_duration_since(*at) < WARN_INTERVAL);
        if warned.len() >= MAX_REMEMBERED
            && let Some(oldest) = warned
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(k, _)| k.clone())
        {
            warned.remove(&oldest);
        }
    }
    warned.insert(key, now);
    true
}

/// Counts a refusal and logs it (rate-limited). The error never holds the hash or password.
pub(super) fn record(entry: &str, username: &str, error: &HashError) {
    COUNTS[reason_index(error)].fetch_add(1, Ordering::Relaxed);
    if warn_due(entry, username, Instant::now()) {
        tracing::warn!(
            entry = entry,
            user = username,
            reason = reason(error),
            error = %error,
            "this user's stored password cannot be checked; the login is refused (next warning for this user in 10 minutes at the earliest)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_warning_per_pair_and_interval_with_bounded_memory() {
        let t0 = Instant::now();
        assert!(warn_due("e-test", "u", t0));
        assert!(!warn_due("e-test", "u", t0 + Duration::from_secs(1)));
        assert!(warn_due("e-test", "v", t0));
        assert!(warn_due("other-test", "u", t0));
        assert!(warn_due("e-test", "u", t0 + WARN_INTERVAL));
        for i in 0..3 * MAX_REMEMBERED {
            warn_due("flood-test", &format!("user{i}"), t0);
        }
        let len = WARNED.lock().unwrap().as_ref().map_or(0, HashMap::len);
        assert!(len <= MAX_REMEMBERED, "{len}");
    }

    #[test]
    fn every_error_has_a_bounded_label() {
        for e in [
            HashError::Empty,
            HashError::Unusable,
            HashError::DesCryptRefused,
            HashError::Busy,
        ] {
            assert!(REASONS.contains(&reason(&e)));
        }
    }
}
