//! Chain semantics over scripted backends: table-driven cases for each rule, and a property test
//! checking `Chain::authenticate` against a plain reference model of the rules, the credential
//! policy included.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use auth_core::policy::{MAX_PASSWORD_BYTES, MAX_TOKEN_BYTES, MAX_USERNAME_BYTES};
use auth_core::{
    Backend, BackendError, Chain, ChainEntry, ChainOutcome, Context, CredentialKind, Credentials,
    OnError, OnReject, Outcome, User, async_trait,
};
use proptest::prelude::*;

/// What a scripted backend answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Script {
    Authenticated,
    NotFound,
    Rejected,
    Denied,
    Unavailable,
}

/// A backend answering `script` after `delay`, for the credential kinds in `accepts`.
struct Scripted {
    script: Script,
    delay: Duration,
    accepts: Vec<CredentialKind>,
    calls: AtomicUsize,
}

#[async_trait]
impl Backend for Scripted {
    fn accepts(&self, kind: CredentialKind) -> bool {
        self.accepts.contains(&kind)
    }

    async fn authenticate(&self, credentials: &Credentials, context: &Context) -> Outcome {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        match self.script {
            Script::Authenticated => {
                let name = credentials.username().unwrap_or("token-user");
                // The id carries the entry this backend ran under, to check the context.
                let mut user = User::new(name);
                user.id = format!("{}:{name}", context.entry);
                Outcome::Authenticated(user)
            }
            Script::NotFound => Outcome::NotFound,
            Script::Rejected => Outcome::Rejected,
            Script::Denied => Outcome::Denied(format!("{} says no", context.entry)),
            Script::Unavailable => Outcome::Unavailable(BackendError::new("connection refused")),
        }
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>, BackendError> {
        Ok(Some(User::new(id)))
    }
}

/// One entry of a test chain.
#[derive(Clone, Debug)]
struct Spec {
    script: Script,
    on_reject: OnReject,
    on_error: OnError,
    /// Sleeps past its timeout.
    slow: bool,
    /// Accepts bearer tokens instead of passwords.
    bearer_only: bool,
}

const TIMEOUT: Duration = Duration::from_millis(100);

fn spec(script: Script) -> Spec {
    Spec {
        script,
        on_reject: OnReject::Next,
        on_error: OnError::Deny,
        slow: false,
        bearer_only: false,
    }
}

impl Spec {
    fn stop_on_reject(mut self) -> Self {
        self.on_reject = OnReject::Stop;
        self
    }
    fn next_on_error(mut self) -> Self {
        self.on_error = OnError::Next;
        self
    }
    fn slow(mut self) -> Self {
        self.slow = true;
        self
    }
    fn bearer_only(mut self) -> Self {
        self.bearer_only = true;
        self
    }
}

fn build(specs: &[Spec]) -> (Chain, Vec<Arc<Scripted>>) {
    let backends: Vec<Arc<Scripted>> = specs
        .iter()
        .map(|s| {
            Arc::new(Scripted {
                script: s.script,
                delay: if s.slow { TIMEOUT * 10 } else { Duration::ZERO },
                accepts: if s.bearer_only {
                    vec![CredentialKind::Bearer]
                } else {
                    vec![CredentialKind::Password]
                },
                calls: AtomicUsize::new(0),
            })
        })
        .collect();
    let entries = specs
        .iter()
        .zip(&backends)
        .enumerate()
        .map(|(i, (s, b))| {
            let mut e = ChainEntry::new(format!("b{i}"), b.clone() as Arc<dyn Backend>);
            e.on_reject = s.on_reject;
            e.on_error = s.on_error;
            e.timeout = TIMEOUT;
            e
        })
        .collect();
    (Chain::new(entries), backends)
}

/// The verdict as comparable data: label, deciding entry, and the trace as (entry, outcome).
#[derive(Debug, PartialEq, Eq)]
struct Verdict {
    label: &'static str,
    entry: Option<String>,
    trace: Vec<(String, &'static str)>,
}

/// The credential policy, written as plainly as possible.
fn policy_refuses(username: &str, password: &str) -> bool {
    username.is_empty()
        || password.is_empty()
        || username.len() > 256
        || password.len() > 1024
        || username.chars().any(|c| c.is_control())
        || password.chars().any(|c| c.is_control())
}

/// The rules, written as plainly as possible, for `alice` / `wonderland`.
fn model(specs: &[Spec]) -> Verdict {
    model_for(specs, "alice", "wonderland")
}

/// The rules for any username and password.
fn model_for(specs: &[Spec], username: &str, password: &str) -> Verdict {
    if policy_refuses(username, password) {
        return verdict("rejected", None, &[("policy", "refused")]);
    }
    let mut trace = Vec::new();
    let mut rejected = false;
    for (i, s) in specs.iter().enumerate() {
        let name = format!("b{i}");
        if s.bearer_only {
            trace.push((name, "skipped"));
            continue;
        }
        let answered = if s.slow {
            Script::Unavailable
        } else {
            s.script
        };
        let label = match answered {
            Script::Authenticated => "authenticated",
            Script::NotFound => "not_found",
            Script::Rejected => "rejected",
            Script::Denied => "denied",
            Script::Unavailable => "unavailable",
        };
        trace.push((name.clone(), label));
        let stop = match answered {
            Script::Authenticated | Script::Denied => true,
            Script::NotFound => false,
            Script::Rejected => {
                rejected = true;
                s.on_reject == OnReject::Stop
            }
            Script::Unavailable => s.on_error == OnError::Deny,
        };
        if stop {
            let entry = (label != "rejected").then_some(name);
            return Verdict {
                label,
                entry,
                trace,
            };
        }
    }
    Verdict {
        label: if rejected { "rejected" } else { "not_found" },
        entry: None,
        trace,
    }
}

/// Runs the real chain for `alice` / `wonderland`.
fn run(specs: &[Spec]) -> Verdict {
    run_with(specs, "alice", "wonderland")
}

/// Runs the real chain (paused clock, so timeouts cost no real time) and checks the facts that
/// are not part of [`Verdict`]: who was called, the user's backend, details.
fn run_with(specs: &[Spec], username: &str, password: &str) -> Verdict {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let (chain, backends) = build(specs);
    let result = rt.block_on(chain.authenticate(
        &Credentials::password(username, password),
        &Context::default(),
    ));
    let tried: Vec<String> = result
        .trace
        .iter()
        .filter(|t| t.outcome != "skipped" && t.outcome != "refused")
        .map(|t| t.entry.clone())
        .collect();
    for (i, b) in backends.iter().enumerate() {
        let expected = usize::from(tried.contains(&format!("b{i}")));
        assert_eq!(b.calls.load(Ordering::SeqCst), expected, "calls of b{i}");
    }
    for step in &result.trace {
        match step.outcome {
            "denied" => assert_eq!(
                step.detail.as_deref(),
                Some(format!("{} says no", step.entry).as_str())
            ),
            "unavailable" => assert!(step.detail.is_some(), "{step:?}"),
            "refused" => {
                assert_eq!(step.entry, "policy");
                let detail = step.detail.as_deref().expect("the rule is named");
                // Short values could appear in the rule's text by chance ("2" in "256").
                if password.len() >= 8 {
                    assert!(!detail.contains(password), "the password leaked: {detail}");
                }
            }
            _ => assert_eq!(step.detail, None, "{step:?}"),
        }
    }
    let entry = match &result.outcome {
        ChainOutcome::Authenticated { user, entry } => {
            assert_eq!(user.backend, *entry);
            assert_eq!(
                user.id,
                format!("{entry}:{username}"),
                "the backend ran as its entry"
            );
            Some(entry.clone())
        }
        ChainOutcome::Denied { entry, reason } => {
            assert_eq!(*reason, format!("{entry} says no"));
            Some(entry.clone())
        }
        ChainOutcome::Unavailable { entry, .. } => Some(entry.clone()),
        ChainOutcome::Rejected | ChainOutcome::NotFound => None,
    };
    Verdict {
        label: result.outcome.label(),
        entry,
        trace: result
            .trace
            .iter()
            .map(|t| (t.entry.clone(), t.outcome))
            .collect(),
    }
}

fn verdict(label: &'static str, entry: Option<&str>, trace: &[(&str, &'static str)]) -> Verdict {
    Verdict {
        label,
        entry: entry.map(str::to_string),
        trace: trace.iter().map(|(e, o)| (e.to_string(), *o)).collect(),
    }
}

#[test]
fn rules_table() {
    use Script::*;
    let cases: Vec<(&str, Vec<Spec>, Verdict)> = vec![
        (
            "first Authenticated wins",
            vec![spec(Authenticated), spec(Authenticated)],
            verdict("authenticated", Some("b0"), &[("b0", "authenticated")]),
        ),
        (
            "NotFound passes on",
            vec![spec(NotFound), spec(Authenticated)],
            verdict(
                "authenticated",
                Some("b1"),
                &[("b0", "not_found"), ("b1", "authenticated")],
            ),
        ),
        (
            "all NotFound",
            vec![spec(NotFound), spec(NotFound)],
            verdict(
                "not_found",
                None,
                &[("b0", "not_found"), ("b1", "not_found")],
            ),
        ),
        (
            "Rejected passes on with on_reject: next",
            vec![spec(Rejected), spec(Authenticated)],
            verdict(
                "authenticated",
                Some("b1"),
                &[("b0", "rejected"), ("b1", "authenticated")],
            ),
        ),
        (
            "Rejected then nothing is Rejected",
            vec![spec(Rejected), spec(NotFound)],
            verdict("rejected", None, &[("b0", "rejected"), ("b1", "not_found")]),
        ),
        (
            "Rejected stops with on_reject: stop",
            vec![spec(Rejected).stop_on_reject(), spec(Authenticated)],
            verdict("rejected", None, &[("b0", "rejected")]),
        ),
        (
            "Denied always stops",
            vec![spec(Denied), spec(Authenticated)],
            verdict("denied", Some("b0"), &[("b0", "denied")]),
        ),
        (
            "Denied stops even after a rejection",
            vec![
                spec(Rejected),
                spec(Denied).next_on_error(),
                spec(Authenticated),
            ],
            verdict(
                "denied",
                Some("b1"),
                &[("b0", "rejected"), ("b1", "denied")],
            ),
        ),
        (
            "Unavailable denies with on_error: deny",
            vec![spec(Unavailable), spec(Authenticated)],
            verdict("unavailable", Some("b0"), &[("b0", "unavailable")]),
        ),
        (
            "Unavailable passes on with on_error: next",
            vec![spec(Unavailable).next_on_error(), spec(Authenticated)],
            verdict(
                "authenticated",
                Some("b1"),
                &[("b0", "unavailable"), ("b1", "authenticated")],
            ),
        ),
        (
            "a timeout is Unavailable (deny)",
            vec![spec(Authenticated).slow(), spec(Authenticated)],
            verdict("unavailable", Some("b0"), &[("b0", "unavailable")]),
        ),
        (
            "a timeout is Unavailable (next)",
            vec![
                spec(Authenticated).slow().next_on_error(),
                spec(Authenticated),
            ],
            verdict(
                "authenticated",
                Some("b1"),
                &[("b0", "unavailable"), ("b1", "authenticated")],
            ),
        ),
        (
            "backends not accepting the kind are skipped",
            vec![spec(Authenticated).bearer_only(), spec(NotFound)],
            verdict("not_found", None, &[("b0", "skipped"), ("b1", "not_found")]),
        ),
        (
            "a skipped Denied does not stop",
            vec![spec(Denied).bearer_only(), spec(Authenticated)],
            verdict(
                "authenticated",
                Some("b1"),
                &[("b0", "skipped"), ("b1", "authenticated")],
            ),
        ),
        (
            "an empty chain finds nobody",
            vec![],
            verdict("not_found", None, &[]),
        ),
    ];
    for (name, specs, expected) in cases {
        assert_eq!(run(&specs), expected, "{name}");
        assert_eq!(model(&specs), expected, "model disagrees on: {name}");
    }
}

#[tokio::test]
async fn a_real_timeout_is_reported_as_such() {
    let (chain, _) = build(&[spec(Script::Authenticated).slow()]);
    let result = chain
        .authenticate(&Credentials::password("alice", "x"), &Context::default())
        .await;
    match result.outcome {
        ChainOutcome::Unavailable { entry, error } => {
            assert_eq!(entry, "b0");
            assert!(error.is_timeout(), "{error}");
            assert_eq!(error.to_string(), "timed out after 100ms");
        }
        other => panic!("{other:?}"),
    }
    let step = &result.trace[0];
    assert!(
        step.elapsed >= TIMEOUT && step.elapsed < TIMEOUT * 10,
        "{step:?}"
    );
}

#[tokio::test]
async fn bearer_credentials_skip_password_backends() {
    let (chain, backends) = build(&[
        spec(Script::Authenticated),
        spec(Script::Authenticated).bearer_only(),
    ]);
    let result = chain
        .authenticate(&Credentials::Bearer("t0ken".into()), &Context::default())
        .await;
    assert_eq!(result.outcome.label(), "authenticated");
    assert_eq!(
        result.outcome.user().map(|u| u.backend.as_str()),
        Some("b1")
    );
    assert_eq!(result.trace[0].outcome, "skipped");
    assert_eq!(backends[0].calls.load(Ordering::SeqCst), 0);
}

fn any_spec() -> impl Strategy<Value = Spec> {
    let script = prop_oneof![
        Just(Script::Authenticated),
        Just(Script::NotFound),
        Just(Script::Rejected),
        Just(Script::Denied),
        Just(Script::Unavailable),
    ];
    let on_reject = prop_oneof![Just(OnReject::Next), Just(OnReject::Stop)];
    let on_error = prop_oneof![Just(OnError::Deny), Just(OnError::Next)];
    (
        script,
        on_reject,
        on_error,
        proptest::bool::weighted(0.15),
        proptest::bool::weighted(0.15),
    )
        .prop_map(|(script, on_reject, on_error, slow, bearer_only)| Spec {
            script,
            on_reject,
            on_error,
            slow,
            bearer_only,
        })
}

/// A username or password: mostly ordinary, sometimes at or past a policy bound.
fn any_credential(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9 \u{e9}\u{fc}$@.-]{1,24}",
        1 => Just(String::new()),
        1 => "[a-z]{0,8}[\x00-\x1f\x7f\u{80}-\u{9f}][a-z]{0,8}",
        1 => Just("x".repeat(max)),
        1 => Just("x".repeat(max + 1)),
        1 => Just("\u{e9}".repeat(max / 2 + 1)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn chain_matches_the_reference_model(
        specs in proptest::collection::vec(any_spec(), 1..8),
        username in any_credential(MAX_USERNAME_BYTES),
        password in any_credential(MAX_PASSWORD_BYTES),
    ) {
        prop_assert_eq!(
            run_with(&specs, &username, &password),
            model_for(&specs, &username, &password)
        );
    }
}

#[test]
fn the_policy_refuses_before_any_backend_runs() {
    let long_user = "u".repeat(MAX_USERNAME_BYTES + 1);
    let long_password = "p".repeat(MAX_PASSWORD_BYTES + 1);
    let cases: [(&str, &str, &str); 8] = [
        ("", "pw", "empty username"),
        ("alice", "", "empty password"),
        ("al\0ice", "pw", "control character in the username"),
        ("alice", "pw\0", "control character in the password"),
        ("alice", "pw\r\n", "control character in the password"),
        ("alice\u{85}", "pw", "control character in the username"),
        (&long_user, "pw", "username longer than 256 bytes"),
        ("alice", &long_password, "password longer than 1024 bytes"),
    ];
    for (username, password, rule) in cases {
        let specs = [spec(Script::Authenticated), spec(Script::Authenticated)];
        assert_eq!(
            run_with(&specs, username, password),
            verdict("rejected", None, &[("policy", "refused")]),
            "{rule}"
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let (chain, backends) = build(&specs);
        let result = rt.block_on(chain.authenticate(
            &Credentials::password(username, password),
            &Context::default(),
        ));
        assert!(matches!(result.outcome, ChainOutcome::Rejected), "{rule}");
        assert_eq!(result.trace[0].detail.as_deref(), Some(rule));
        assert!(backends.iter().all(|b| b.calls.load(Ordering::SeqCst) == 0));
    }
    // At the bounds, still accepted.
    let specs = [spec(Script::Authenticated)];
    let at_bounds = run_with(
        &specs,
        &"u".repeat(MAX_USERNAME_BYTES),
        &"p".repeat(MAX_PASSWORD_BYTES),
    );
    assert_eq!(at_bounds.label, "authenticated");
}

#[tokio::test]
async fn the_policy_covers_tokens_and_api_keys() {
    let (chain, backends) = build(&[spec(Script::Authenticated).bearer_only()]);
    for token in [
        String::new(),
        "t\0ken".to_string(),
        "t".repeat(MAX_TOKEN_BYTES + 1),
    ] {
        let result = chain
            .authenticate(&Credentials::Bearer(token.clone()), &Context::default())
            .await;
        assert!(
            matches!(result.outcome, ChainOutcome::Rejected),
            "{token:?}"
        );
        assert_eq!(result.trace.len(), 1);
        assert_eq!(
            (result.trace[0].entry.as_str(), result.trace[0].outcome),
            ("policy", "refused")
        );
        let key = Credentials::ApiKey {
            header: "x-api-key".into(),
            key: token.clone(),
        };
        let result = chain.authenticate(&key, &Context::default()).await;
        assert!(
            matches!(result.outcome, ChainOutcome::Rejected),
            "{token:?}"
        );
    }
    assert_eq!(backends[0].calls.load(Ordering::SeqCst), 0);
    let ok = chain
        .authenticate(
            &Credentials::Bearer("t".repeat(MAX_TOKEN_BYTES)),
            &Context::default(),
        )
        .await;
    assert_eq!(ok.outcome.label(), "authenticated");
}
