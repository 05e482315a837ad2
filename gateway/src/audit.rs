//! The audit trail (`audit:`): one structured line per security event, separate from the
//! access log. Every event goes through [`Audit::emit`]; the places that emit are identify (Basic,
//! bearer, API key, session revalidation), the login and logout endpoints, the lockout (through
//! identify and the admin listener) and reload.
//!
//! Contract:
//! - a line never holds a password, token, API key, cookie or CSRF token: events carry only
//!   usernames, entry names, outcomes, reasons and addresses;
//! - an attempted username (attacker-chosen) is [`sanitized`](sanitize): control and
//!   bidirectional-formatting characters escaped, at most [`MAX_ATTEMPTED_CHARS`] characters;
//! - writing never blocks the caller: a line is formatted on the caller's thread and handed
//!   to a writer thread through a bounded channel; when it is full the line is dropped and
//!   counted (`gateway_audit_dropped_total`);
//! - each config version opens its own sink, so a reload (SIGHUP) reopens the file after a log
//!   rotation; a file that cannot be opened refuses the config.

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::SystemTime;

use auth_core::TraceStep;
use serde_json::{Map, Value, json};

use crate::config::model::{AuditConfig, AuditFormat};

/// Longest attempted username an event carries, in characters (the rest is cut, marked `…`).
pub(crate) const MAX_ATTEMPTED_CHARS: usize = 128;

/// Lines the writer may lag behind before new ones are dropped.
const QUEUE: usize = 8192;

/// Lines dropped because the writer lagged (all sinks of the process).
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Lines dropped so far because the writer could not keep up.
pub(crate) fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// How the credentials of a login came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoginMethod {
    /// The login form.
    Form,
    /// `Authorization: Basic`.
    Basic,
    /// `Authorization: Bearer`.
    Bearer,
    /// An API-key header.
    ApiKey,
    /// A single sign-on callback (`{prefix}/oidc/{entry}/callback`).
    Sso,
}

impl LoginMethod {
    fn label(self) -> &'static str {
        match self {
            LoginMethod::Form => "form",
            LoginMethod::Basic => "basic",
            LoginMethod::Bearer => "bearer",
            LoginMethod::ApiKey => "api_key",
            LoginMethod::Sso => "sso",
        }
    }
}

/// Why a login failed; also the `reason` label of `gateway_auth_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureReason {
    /// A backend knew the user and the password (or token) was wrong.
    WrongPassword,
    /// No backend knew the user (or the token or key).
    UnknownUser,
    /// The (username, client) pair or the client was locked out; the chain did not run.
    Locked,
    /// The credential policy refused the credentials before any backend (empty, too long...).
    Policy,
    /// A backend knew the user and refused them (disabled, not allowed).
    Denied,
    /// A backend could not answer (the request got a 503).
    BackendError,
    /// The same credentials failed moments ago (`cache.negative_ttl`); the chain did not run.
    CachedFailure,
    /// A single sign-on callback without a matching pre-login cookie and `state` (expired,
    /// another browser, or forged).
    SsoState,
    /// The identity provider ended the sign-in with an error, or its answer (code, ID token)
    /// did not validate.
    ProviderRefused,
}

impl FailureReason {
    /// The label in events and metrics.
    pub(crate) fn label(self) -> &'static str {
        match self {
            FailureReason::WrongPassword => "wrong_password",
            FailureReason::UnknownUser => "unknown_user",
            FailureReason::Locked => "locked",
            FailureReason::Policy => "policy",
            FailureReason::Denied => "denied",
            FailureReason::BackendError => "backend_error",
            FailureReason::CachedFailure => "cached_failure",
            FailureReason::SsoState => "sso_state",
            FailureReason::ProviderRefused => "provider_refused",
        }
    }

    /// The reason of a chain outcome that did not authenticate.
    pub(crate) fn of(outcome: &auth_core::ChainOutcome, trace: &[TraceStep]) -> FailureReason {
        use auth_core::ChainOutcome;
        match outcome {
            ChainOutcome::Authenticated { .. } | ChainOutcome::Rejected
                if trace
                    .iter()
                    .any(|s| s.entry == auth_core::policy::POLICY_STEP) =>
            {
                FailureReason::Policy
            }
            ChainOutcome::Authenticated { .. } | ChainOutcome::Rejected => {
                FailureReason::WrongPassword
            }
            ChainOutcome::NotFound => FailureReason::UnknownUser,
            ChainOutcome::Denied { .. } => FailureReason::Denied,
            ChainOutcome::Unavailable { .. } => FailureReason::BackendError,
        }
    }
}

/// What a lockout covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockScope {
    /// One (username, client) pair.
    User,
    /// One client, whatever the username (a password spray).
    Client,
}

/// Why a lockout ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockEnd {
    /// Its time ran out.
    Expired,
    /// An operator cleared it (`authgate lockouts clear`).
    Cleared,
}

/// Why a session ended when it was revalidated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionEnd {
    /// The backend no longer knows the user (or refuses them).
    UserGone,
    /// The session's chain entry left the chain.
    EntryGone,
    /// The user's credential version changed (a new password).
    CredentialsChanged,
    /// The single sign-on provider refused to refresh the session (grant revoked, user
    /// disabled there) or the refreshed tokens failed a check.
    RefreshRefused,
    /// The refreshed user is no longer allowed (`allowed_groups`, `allowed_domains`).
    NotAllowed,
}

/// One audit event.
#[derive(Debug)]
pub(crate) enum Event<'a> {
    /// A login succeeded (a chain run; a cached Basic success is not audited again).
    LoginSuccess {
        method: LoginMethod,
        /// The canonical username the backend returned.
        user: &'a str,
        /// The chain entry that authenticated.
        backend: &'a str,
        client_ip: IpAddr,
        trace: &'a [TraceStep],
    },
    /// A login failed.
    LoginFailure {
        method: LoginMethod,
        /// The username as typed (none for tokens and keys).
        attempted: Option<&'a str>,
        reason: FailureReason,
        client_ip: IpAddr,
        trace: &'a [TraceStep],
    },
    /// A lockout started.
    LockoutStart {
        scope: LockScope,
        /// The canonical username (none for a client lockout).
        user: Option<&'a str>,
        client_ip: &'a str,
        seconds: u64,
    },
    /// A lockout ended.
    LockoutEnd {
        scope: LockScope,
        user: Option<&'a str>,
        client_ip: &'a str,
        reason: LockEnd,
    },
    /// A user signed out.
    Logout {
        user: &'a str,
        backend: &'a str,
        client_ip: IpAddr,
    },
    /// Revalidation ended a session.
    SessionEnded {
        user: &'a str,
        backend: &'a str,
        reason: SessionEnd,
        client_ip: IpAddr,
    },
    /// A reload was applied (`errors` empty) or refused (the old version keeps serving).
    Reload {
        /// The version now serving.
        version: u64,
        /// The version before.
        previous_version: u64,
        /// The config file.
        path: &'a Path,
        /// Why the config was refused, one message per problem; empty when applied.
        errors: &'a [String],
    },
}

impl Event<'_> {
    /// The event's name (`event` field).
    fn name(&self) -> &'static str {
        match self {
            Event::LoginSuccess { .. } => "login_success",
            Event::LoginFailure { .. } => "login_failure",
            Event::LockoutStart { .. } => "lockout_start",
            Event::LockoutEnd { .. } => "lockout_end",
            Event::Logout { .. } => "logout",
            Event::SessionEnded { .. } => "session_ended",
            Event::Reload { .. } => "reload",
        }
    }

    /// The fields after `ts` and `event`, in order.
    fn fields(&self) -> Vec<(&'static str, Value)> {
        let scope = |s: &LockScope| match s {
            LockScope::User => "user",
            LockScope::Client => "client",
        };
        match self {
            Event::LoginSuccess {
                method,
                user,
                backend,
                client_ip,
                trace,
            } => vec![
                ("result", json!("success")),
                ("method", json!(method.label())),
                ("user", json!(sanitize(user))),
                ("backend", json!(backend)),
                ("client_ip", json!(client_ip.to_string())),
                ("steps", steps(trace)),
            ],
            Event::LoginFailure {
                method,
                attempted,
                reason,
                client_ip,
                trace,
            } => vec![
                ("result", json!("failure")),
                ("method", json!(method.label())),
                ("attempted_user", json!(attempted.map(sanitize))),
                ("reason", json!(reason.label())),
                ("client_ip", json!(client_ip.to_string())),
                ("steps", steps(trace)),
            ],
            Event::LockoutStart {
                scope: s,
                user,
                client_ip,
                seconds,
            } => vec![
                ("scope", json!(scope(s))),
                ("user", json!(user.map(sanitize))),
                ("client_ip", json!(client_ip)),
                ("seconds", json!(seconds)),
            ],
            Event::LockoutEnd {
                scope: s,
                user,
                client_ip,
                reason,
            } => vec![
                ("scope", json!(scope(s))),
                ("user", json!(user.map(sanitize))),
                ("client_ip", json!(client_ip)),
                (
                    "reason",
                    json!(match reason {
                        LockEnd::Expired => "expired",
                        LockEnd::Cleared => "cleared",
                    }),
                ),
            ],
            Event::Logout {
                user,
                backend,
                client_ip,
            } => vec![
                ("user", json!(sanitize(user))),
                ("backend", json!(backend)),
                ("client_ip", json!(client_ip.to_string())),
            ],
            Event::SessionEnded {
                user,
                backend,
                reason,
                client_ip,
            } => vec![
                ("user", json!(sanitize(user))),
                ("backend", json!(backend)),
                (
                    "reason",
                    json!(match reason {
                        SessionEnd::UserGone => "user_gone",
                        SessionEnd::EntryGone => "entry_gone",
                        SessionEnd::CredentialsChanged => "credentials_changed",
                        SessionEnd::RefreshRefused => "refresh_refused",
                        SessionEnd::NotAllowed => "not_allowed",
                    }),
                ),
                ("client_ip", json!(client_ip.to_string())),
            ],
            Event::Reload {
                version,
                previous_version,
                path,
                errors,
            } => {
                let mut fields = vec![
                    (
                        "result",
                        json!(if errors.is_empty() { "ok" } else { "refused" }),
                    ),
                    ("version", json!(version)),
                    ("previous_version", json!(previous_version)),
                    ("path", json!(path.display().to_string())),
                ];
                if !errors.is_empty() {
                    fields.push(("errors", json!(errors)));
                }
                fields
            }
        }
    }
}

/// Each chain step as `{entry, outcome, detail?}`: the detail is a denial reason, an error
/// message or the policy rule, never a credential.
fn steps(trace: &[TraceStep]) -> Value {
    Value::Array(
        trace
            .iter()
            .map(|s| {
                let mut step = Map::new();
                step.insert("entry".into(), json!(s.entry));
                step.insert("outcome".into(), json!(s.outcome));
                if let Some(detail) = &s.detail {
                    step.insert("detail".into(), json!(sanitize(detail)));
                }
                Value::Object(step)
            })
            .collect(),
    )
}

/// `text` made safe for a log line: control characters and the bidirectional and zero-width
/// formatting characters (which can make a line read differently than it is) escaped as
/// `\u{..}`, and at most [`MAX_ATTEMPTED_CHARS`] characters kept (`…` marks a cut).
pub(crate) fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_ATTEMPTED_CHARS));
    for (i, c) in text.chars().enumerate() {
        if i == MAX_ATTEMPTED_CHARS {
            out.push('…');
            break;
        }
        let formatting = matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}');
        if c.is_control() || formatting {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// Where events go: nowhere (no `audit:`), or a writer thread.
pub struct Audit {
    format: AuditFormat,
    sink: Option<SyncSender<String>>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("format", &self.format)
            .field("enabled", &self.sink.is_some())
            .finish()
    }
}

/// The audit file could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("audit.to `{path}`: {source}")]
pub struct AuditError {
    path: String,
    #[source]
    source: std::io::Error,
}

impl Audit {
    /// An audit that writes nothing.
    pub fn disabled() -> Audit {
        Audit {
            format: AuditFormat::Json,
            sink: None,
        }
    }

    /// Opens the sink `config` names (`stdout`, `stderr` or a file appended to, created `0600`,
    /// relative paths under `data_dir`) and starts its writer thread.
    pub fn open(config: Option<&AuditConfig>, data_dir: &Path) -> Result<Audit, AuditError> {
        let Some(config) = config else {
            return Ok(Audit::disabled());
        };
        let out: Box<dyn Write + Send> = match config.to.value.as_str() {
            "stdout" => Box::new(std::io::stdout()),
            "stderr" => Box::new(std::io::stderr()),
            path => {
                let path = data_dir.join(path);
                let mut options = std::fs::OpenOptions::new();
                options.create(true).append(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                Box::new(options.open(&path).map_err(|source| AuditError {
                    path: path.display().to_string(),
                    source,
                })?)
            }
        };
        let (tx, rx) = std::sync::mpsc::sync_channel::<String>(QUEUE);
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || {
                let mut out = out;
                // Ends when the last sender (the last runtime using this sink) is gone.
                while let Ok(line) = rx.recv() {
                    if out
                        .write_all(line.as_bytes())
                        .and_then(|()| out.flush())
                        .is_err()
                    {
                        DROPPED.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
            .map_err(|source| AuditError {
                path: config.to.value.clone(),
                source,
            })?;
        Ok(Audit {
            format: config.format,
            sink: Some(tx),
        })
    }

    /// Whether events are written anywhere.
    pub(crate) fn enabled(&self) -> bool {
        self.sink.is_some()
    }

    /// Writes `event` as one line, without waiting.
    pub(crate) fn emit(&self, event: Event<'_>) {
        let Some(sink) = &self.sink else {
            return;
        };
        let ts = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let line = match self.format {
            AuditFormat::Json => json_line(&ts, event.name(), event.fields()),
            AuditFormat::Text => text_line(&ts, event.name(), event.fields()),
        };
        match sink.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Audits a reload attempt: to the new version's sink when it was applied, to the serving
/// one's when it was refused (with the reasons).
pub(crate) fn reload(
    gw: &crate::state::Gateway,
    previous_version: u64,
    path: &Path,
    result: Result<(), &dyn std::fmt::Display>,
) {
    let rt = gw.current();
    let errors: Vec<String> = match result {
        Ok(_) => Vec::new(),
        Err(e) => e.to_string().lines().map(str::to_string).collect(),
    };
    rt.services.audit.emit(Event::Reload {
        version: rt.version(),
        previous_version,
        path,
        errors: &errors,
    });
}

/// One JSON object, keys in the event's order (`ts` and `event` first).
fn json_line(ts: &str, event: &str, fields: Vec<(&'static str, Value)>) -> String {
    let mut line = format!("{{\"ts\":{},\"event\":{}", json!(ts), json!(event));
    for (k, v) in fields {
        line.push_str(&format!(",{}:{v}", json!(k)));
    }
    line.push_str("}\n");
    line
}

/// `ts event key=value ...`: strings quoted (JSON escaping) when they hold a space, a quote, a
/// `=` or are empty; steps as `entry:outcome` joined by `,`.
fn text_line(ts: &str, event: &str, fields: Vec<(&'static str, Value)>) -> String {
    let mut line = format!("{ts} {event}");
    for (k, v) in fields {
        let text = match v {
            Value::Null => continue,
            Value::String(s) => s,
            Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    Value::Object(step) => format!(
                        "{}:{}",
                        step.get("entry").and_then(Value::as_str).unwrap_or("-"),
                        step.get("outcome").and_then(Value::as_str).unwrap_or("-")
                    ),
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(","),
            other => other.to_string(),
        };
        line.push(' ');
        line.push_str(k);
        line.push('=');
        if text.is_empty() || text.contains([' ', '"', '=', '\\']) {
            line.push_str(&Value::String(text).to_string());
        } else {
            line.push_str(&text);
        }
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_escapes_controls_and_bidi_and_caps_length() {
        assert_eq!(sanitize("alice"), "alice");
        assert_eq!(sanitize("a\nb\x1b[31m"), "a\\u{a}b\\u{1b}[31m");
        assert_eq!(sanitize("x\u{202E}y"), "x\\u{202e}y");
        let long = "é".repeat(500);
        let cut = sanitize(&long);
        assert_eq!(cut.chars().count(), MAX_ATTEMPTED_CHARS + 1);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn json_lines_start_with_the_time_and_the_event() {
        let line = json_line("T", "logout", vec![("user", json!("a\"b"))]);
        assert_eq!(
            line,
            "{\"ts\":\"T\",\"event\":\"logout\",\"user\":\"a\\\"b\"}\n"
        );
        let parsed: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["user"], "a\"b");
    }

    #[test]
    fn text_lines_quote_what_needs_it() {
        let line = text_line(
            "T",
            "login_failure",
            vec![
                ("attempted_user", json!("bob smith")),
                ("reason", json!("wrong_password")),
                ("none", Value::Null),
                (
                    "steps",
                    json!([{"entry": "files", "outcome": "rejected"}, {"entry": "ldap", "outcome": "skipped"}]),
                ),
            ],
        );
        assert_eq!(
            line,
            "T login_failure attempted_user=\"bob smith\" reason=wrong_password steps=files:rejected,ldap:skipped\n"
        );
    }
}
