use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::policy::{self, POLICY_STEP};
use crate::{Backend, BackendError, Context, Credentials, Outcome, User};

/// What the chain does when a backend answers `Rejected`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnReject {
    /// Try the next backend (Django's behaviour).
    #[default]
    Next,
    /// Stop: this backend is authoritative for its users.
    Stop,
}

/// What the chain does when a backend is `Unavailable`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Stop and deny (fail closed).
    #[default]
    Deny,
    /// Try the next backend.
    Next,
}

/// Whether an entry mirrors the users it authenticates into the local user store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provision {
    /// Do not mirror.
    #[default]
    None,
    /// Create the local user on first login only.
    Create,
    /// Create on first login and refresh attributes and groups on every login.
    Update,
}

/// One entry of the chain.
#[derive(Clone)]
pub struct ChainEntry {
    /// Unique name, recorded in sessions and sent as `X-Remote-Backend`.
    pub name: String,
    /// The backend's registered `type`.
    pub type_name: String,
    /// The backend.
    pub backend: Arc<dyn Backend>,
    /// Policy on `Rejected`.
    pub on_reject: OnReject,
    /// Policy on `Unavailable`.
    pub on_error: OnError,
    /// Time budget for one `authenticate` call.
    pub timeout: Duration,
    /// Provisioning policy.
    pub provision: Provision,
}

impl std::fmt::Debug for ChainEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainEntry")
            .field("name", &self.name)
            .field("type", &self.type_name)
            .field("on_reject", &self.on_reject)
            .field("on_error", &self.on_error)
            .field("timeout", &self.timeout)
            .field("provision", &self.provision)
            .finish()
    }
}

impl ChainEntry {
    /// An entry with the default policies (`on_reject: next`, `on_error: deny`, 5 s timeout).
    pub fn new(name: impl Into<String>, backend: Arc<dyn Backend>) -> Self {
        ChainEntry {
            name: name.into(),
            type_name: String::new(),
            backend,
            on_reject: OnReject::default(),
            on_error: OnError::default(),
            timeout: Duration::from_secs(5),
            provision: Provision::default(),
        }
    }
}

/// The outcome of one backend in a trace, without the user or error payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TraceStep {
    /// Chain entry name, or [`POLICY_STEP`] (`policy`) when the credential policy refused the
    /// credentials before any backend ran.
    pub entry: String,
    /// `authenticated`, `not_found`, `rejected`, `denied`, `unavailable` or `skipped`
    /// (credential kind not accepted); `refused` for the policy step.
    pub outcome: &'static str,
    /// Denial reason, error message or the policy rule broken (never a secret).
    pub detail: Option<String>,
    /// Time the backend took.
    #[serde(with = "duration_micros")]
    pub elapsed: Duration,
}

mod duration_micros {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_micros() as u64)
    }
}

/// The chain's verdict.
#[derive(Debug)]
pub enum ChainOutcome {
    /// A backend authenticated the user; `entry` is its chain entry name.
    Authenticated {
        /// The user, with `backend` set to `entry`.
        user: User,
        /// Chain entry name.
        entry: String,
    },
    /// Some backend knew the user and the credentials were wrong, and nothing after it succeeded;
    /// or the credential policy refused the credentials before any backend ran (the trace then
    /// holds one [`POLICY_STEP`] step).
    Rejected,
    /// No backend knew the user.
    NotFound,
    /// A backend refused the user; the chain stopped.
    Denied {
        /// Entry that denied.
        entry: String,
        /// Its reason.
        reason: String,
    },
    /// A backend could not answer and its `on_error` is `deny`; the chain stopped.
    Unavailable {
        /// Entry that failed.
        entry: String,
        /// Its error.
        error: BackendError,
    },
}

impl ChainOutcome {
    /// The authenticated user, if any.
    pub fn user(&self) -> Option<&User> {
        match self {
            ChainOutcome::Authenticated { user, .. } => Some(user),
            _ => None,
        }
    }

    /// A short label for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            ChainOutcome::Authenticated { .. } => "authenticated",
            ChainOutcome::Rejected => "rejected",
            ChainOutcome::NotFound => "not_found",
            ChainOutcome::Denied { .. } => "denied",
            ChainOutcome::Unavailable { .. } => "unavailable",
        }
    }
}

/// The verdict with its trace: each backend tried, in order.
#[derive(Debug)]
pub struct ChainResult {
    /// The verdict.
    pub outcome: ChainOutcome,
    /// Every backend tried (or skipped), in order.
    pub trace: Vec<TraceStep>,
}

/// The ordered list of backends, tried like Django's `AUTHENTICATION_BACKENDS`.
#[derive(Clone, Debug, Default)]
pub struct Chain {
    entries: Vec<ChainEntry>,
}

impl Chain {
    /// A chain of `entries`, in order. Names must be unique (checked by the config loader).
    pub fn new(entries: Vec<ChainEntry>) -> Self {
        Chain { entries }
    }

    /// The entries, in order.
    pub fn entries(&self) -> &[ChainEntry] {
        &self.entries
    }

    /// The entry named `name`.
    pub fn entry(&self, name: &str) -> Option<&ChainEntry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// Runs the chain. First the credential policy ([`crate::policy::check`]): an empty, over-long
    /// or control-character-bearing username, password, token or key is `Rejected` at once, with
    /// a single `policy`/`refused` trace step naming the rule, and no backend is called. Then:
    /// - `Authenticated` stops with success;
    /// - `NotFound` (or a backend that does not accept the credential kind) passes on;
    /// - `Rejected` passes on with `on_reject: next`, stops with `stop`;
    /// - `Denied` stops with failure;
    /// - `Unavailable` (including exceeding the entry's `timeout`) stops with `on_error: deny`,
    ///   passes on with `next`.
    ///
    /// When the chain runs out, the verdict is `Rejected` if any backend rejected, else `NotFound`.
    pub async fn authenticate(&self, credentials: &Credentials, context: &Context) -> ChainResult {
        if let Err(violation) = policy::check(credentials) {
            return ChainResult {
                outcome: ChainOutcome::Rejected,
                trace: vec![TraceStep {
                    entry: POLICY_STEP.to_string(),
                    outcome: "refused",
                    detail: Some(violation.to_string()),
                    elapsed: Duration::ZERO,
                }],
            };
        }
        let mut trace = Vec::with_capacity(self.entries.len());
        let mut rejected = false;
        let kind = credentials.kind();
        for entry in &self.entries {
            if !entry.backend.accepts(kind) {
                trace.push(TraceStep {
                    entry: entry.name.clone(),
                    outcome: "skipped",
                    detail: None,
                    elapsed: Duration::ZERO,
                });
                continue;
            }
            let ctx = Context {
                entry: entry.name.clone(),
                ..context.clone()
            };
            let started = Instant::now();
            let outcome = match tokio::time::timeout(
                entry.timeout,
                entry.backend.authenticate(credentials, &ctx),
            )
            .await
            {
                Ok(outcome) => outcome,
                Err(_) => Outcome::Unavailable(BackendError::timeout(entry.timeout)),
            };
            let elapsed = started.elapsed();
            let detail = match &outcome {
                Outcome::Denied(reason) => Some(reason.clone()),
                Outcome::Unavailable(error) => Some(error.to_string()),
                _ => None,
            };
            trace.push(TraceStep {
                entry: entry.name.clone(),
                outcome: outcome.label(),
                detail,
                elapsed,
            });
            match outcome {
                Outcome::Authenticated(mut user) => {
                    user.backend = entry.name.clone();
                    return ChainResult {
                        outcome: ChainOutcome::Authenticated {
                            user,
                            entry: entry.name.clone(),
                        },
                        trace,
                    };
                }
                Outcome::NotFound => {}
                Outcome::Rejected => {
                    rejected = true;
                    if entry.on_reject == OnReject::Stop {
                        return ChainResult {
                            outcome: ChainOutcome::Rejected,
                            trace,
                        };
                    }
                }
                Outcome::Denied(reason) => {
                    return ChainResult {
                        outcome: ChainOutcome::Denied {
                            entry: entry.name.clone(),
                            reason,
                        },
                        trace,
                    };
                }
                Outcome::Unavailable(error) => {
                    if entry.on_error == OnError::Deny {
                        return ChainResult {
                            outcome: ChainOutcome::Unavailable {
                                entry: entry.name.clone(),
                                error,
                            },
                            trace,
                        };
                    }
                }
            }
        }
        ChainResult {
            outcome: if rejected {
                ChainOutcome::Rejected
            } else {
                ChainOutcome::NotFound
            },
            trace,
        }
    }

    /// Restores a session's user through the entry that authenticated them. `Ok(None)` when the
    /// entry has left the chain or the user is gone.
    pub async fn get_user(&self, entry: &str, id: &str) -> Result<Option<User>, BackendError> {
        let Some(e) = self.entry(entry) else {
            return Ok(None);
        };
        match tokio::time::timeout(e.timeout, e.backend.get_user(id)).await {
            Ok(Ok(Some(mut user))) => {
                user.backend = e.name.clone();
                Ok(Some(user))
            }
            Ok(other) => other,
            Err(_) => Err(BackendError::timeout(e.timeout)),
        }
    }
}
