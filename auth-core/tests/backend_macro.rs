//! `#[auth_backend]` used for real: what it registers, how its options parse from YAML, and how
//! the factory builds the backend.

use std::collections::BTreeMap;
use std::sync::Arc;

use auth_core::registry::{BackendFactory, BackendRegistration, RegistryError};
use auth_core::{
    Backend, BackendError, BuildContext, BuildError, Context, CredentialKind, Credentials,
    Duration, OptionDoc, Outcome, Registry, Secret, User, async_trait, auth_backend,
};

/// Checks passwords against a fixed table (a test backend).
///
/// Second line of the description.
#[auth_backend(type = "macro_table")]
struct TableBackend {
    /// Username -> password.
    users: BTreeMap<String, Secret>,
    /// How long one check may take.
    #[option(default = "5s")]
    timeout: Duration,
    /// How many attempts before lockout.
    #[option(default = 10)]
    max_attempts: u32,
    /// Compare usernames case-insensitively.
    #[option(default = true)]
    case_insensitive: bool,
    /// Extra realm shown in logs.
    #[option(default)]
    realm: String,
    /// Where to send alerts.
    #[option(rename = "alert-email")]
    alert_email: Option<String>,
    /// The bind password.
    bind_password: Option<Secret>,
    #[option(skip)]
    calls: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl Backend for TableBackend {
    async fn authenticate(&self, credentials: &Credentials, _: &Context) -> Outcome {
        self.calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Credentials::Password { username, password } = credentials else {
            return Outcome::NotFound;
        };
        match self.users.get(username) {
            Some(p) if p.expose() == password => Outcome::Authenticated(User::new(username)),
            Some(_) => Outcome::Rejected,
            None => Outcome::NotFound,
        }
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>, BackendError> {
        Ok(self.users.contains_key(id).then(|| User::new(id)))
    }
}

fn registry() -> Registry {
    Registry::from_inventory().expect("no duplicate registrations")
}

fn registration(name: &str) -> &'static BackendRegistration {
    registry().get(name).expect("registered")
}

#[test]
fn the_backend_is_registered_under_its_type() {
    let reg = registration("macro_table");
    assert_eq!(reg.type_name, "macro_table");
    assert_eq!(
        reg.description,
        "Checks passwords against a fixed table (a test backend).\n\nSecond line of the description."
    );
    assert!(
        reg.rust_path.ends_with("backend_macro::TableBackend"),
        "{}",
        reg.rust_path
    );
}

#[test]
fn option_docs_follow_the_fields() {
    let reg = registration("macro_table");
    let doc = |name: &str| -> OptionDoc {
        *reg.options
            .iter()
            .find(|o| o.name == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    let names: Vec<&str> = reg.options.iter().map(|o| o.name).collect();
    assert_eq!(
        names,
        [
            "users",
            "timeout",
            "max_attempts",
            "case_insensitive",
            "realm",
            "alert-email",
            "bind_password"
        ]
    );
    assert_eq!(
        doc("users"),
        OptionDoc {
            name: "users",
            ty: "BTreeMap<String, Secret>",
            required: true,
            default: None,
            secret: true,
            doc: "Username -> password.",
        }
    );
    assert_eq!(doc("timeout").default, Some("5s"));
    assert!(!doc("timeout").required);
    assert_eq!(doc("max_attempts").default, Some("10"));
    assert_eq!(doc("case_insensitive").default, Some("true"));
    assert_eq!(doc("realm").default, None);
    assert!(!doc("realm").required);
    assert_eq!(doc("alert-email").ty, "Option<String>");
    assert!(!doc("alert-email").required);
    assert!(!doc("alert-email").secret);
    assert!(doc("bind_password").secret);
    assert_eq!(doc("bind_password").doc, "The bind password.");
}

#[test]
fn options_parse_from_yaml_with_defaults() {
    let b: TableBackend = serde_saphyr::from_str("users:\n  alice: wonderland\n").unwrap();
    assert_eq!(b.users["alice"].expose(), "wonderland");
    assert_eq!(b.timeout, Duration::from_secs(5));
    assert_eq!(b.max_attempts, 10);
    assert!(b.case_insensitive);
    assert_eq!(b.realm, "");
    assert_eq!(b.alert_email, None);
    assert!(b.bind_password.is_none());
    assert_eq!(b.calls.load(std::sync::atomic::Ordering::Relaxed), 0);
}

#[test]
fn given_options_override_defaults() {
    let yaml = "users: {}\ntimeout: 250ms\nmax_attempts: 3\ncase_insensitive: false\nrealm: corp\nalert-email: ops@example.org\n";
    let b: TableBackend = serde_saphyr::from_str(yaml).unwrap();
    assert_eq!(b.timeout, Duration::from_millis(250));
    assert_eq!(b.max_attempts, 3);
    assert!(!b.case_insensitive);
    assert_eq!(b.realm, "corp");
    assert_eq!(b.alert_email.as_deref(), Some("ops@example.org"));
}

#[test]
fn env_secrets_are_resolved_and_redacted() {
    // Cargo sets CARGO_PKG_NAME for the test process; the workspace forbids `unsafe` set_var.
    let b: TableBackend =
        serde_saphyr::from_str("users: {}\nbind_password: env:CARGO_PKG_NAME\n").unwrap();
    let secret = b.bind_password.expect("given");
    assert_eq!(secret.expose(), env!("CARGO_PKG_NAME"));
    let shown = format!("{secret:?}");
    assert!(!shown.contains(env!("CARGO_PKG_NAME")), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");

    let unset = "AUTH_MACROS_TEST_SURELY_UNSET_VARIABLE";
    let yaml = format!("users: {{}}\nbind_password: env:{unset}\n");
    let err = serde_saphyr::from_str::<TableBackend>(&yaml)
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains(unset) && err.contains("line 2"), "{err}");
}

#[test]
fn unknown_keys_are_refused_with_their_location() {
    let yaml = "users: {}\ntimeout: 1s\ntimout: 2s\n";
    let err = serde_saphyr::from_str::<TableBackend>(yaml)
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("unknown field `timout`"), "{err}");
    assert!(
        err.contains("expected one of users, timeout, max_attempts"),
        "{err}"
    );
    assert!(err.contains("line 3 column 1"), "no location in: {err}");
}

#[test]
fn a_missing_required_option_is_refused() {
    let err = serde_saphyr::from_str::<TableBackend>("timeout: 1s\n")
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("missing field `users`"), "{err}");
}

#[test]
fn a_duplicate_key_is_refused() {
    let err = serde_saphyr::from_str::<TableBackend>("users: {}\nrealm: a\nrealm: b\n")
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("realm"), "{err}");
}

#[test]
fn a_bad_duration_is_refused() {
    let err = serde_saphyr::from_str::<TableBackend>("users: {}\ntimeout: 5\n")
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("a unit is required"), "{err}");
}

#[tokio::test]
async fn the_registration_parses_and_builds_the_backend() {
    let json = serde_json::json!({"users": {"alice": "wonderland"}, "bind_password": "hunter2"});
    let factory = registry().parse("macro_table", json).expect("parses");
    let shown = format!("{factory:?}");
    assert!(shown.contains("macro_table"), "{shown}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("wonderland"),
        "secret shown: {shown}"
    );
    assert!(shown.contains("<redacted>"), "{shown}");
    let backend = factory.build(&BuildContext::new("t", ".")).expect("builds");
    let ok = backend
        .authenticate(
            &Credentials::password("alice", "wonderland"),
            &Context::default(),
        )
        .await;
    assert!(
        matches!(ok, Outcome::Authenticated(ref u) if u.username == "alice"),
        "{ok:?}"
    );
    let bad = backend
        .authenticate(&Credentials::password("alice", "nope"), &Context::default())
        .await;
    assert!(matches!(bad, Outcome::Rejected), "{bad:?}");
}

/// A backend built through a function, holding runtime state.
#[auth_backend(type = "macro_built", build = Self::build)]
struct BuiltConfig {
    /// The only user.
    user: String,
}

struct Built {
    user: String,
    entry: String,
}

impl BuiltConfig {
    fn build(self, ctx: &BuildContext) -> Result<Arc<dyn Backend>, BuildError> {
        if self.user.is_empty() {
            return Err(BuildError::new("`user` must not be empty"));
        }
        Ok(Arc::new(Built {
            user: self.user,
            entry: ctx.entry.clone(),
        }))
    }
}

#[async_trait]
impl Backend for Built {
    async fn authenticate(&self, credentials: &Credentials, _: &Context) -> Outcome {
        match credentials.username() {
            Some(u) if u == self.user => {
                Outcome::Authenticated(User::new(u).with_display_name(&self.entry))
            }
            _ => Outcome::NotFound,
        }
    }

    async fn get_user(&self, _: &str) -> Result<Option<User>, BackendError> {
        Ok(None)
    }
}

#[tokio::test]
async fn build_functions_are_called_with_the_context() {
    let backend = registry()
        .build(
            "macro_built",
            serde_json::json!({"user": "carol"}),
            &BuildContext::new("entry-x", "."),
        )
        .unwrap();
    let out = backend
        .authenticate(&Credentials::password("carol", "x"), &Context::default())
        .await;
    match out {
        Outcome::Authenticated(u) => assert_eq!(u.display_name.as_deref(), Some("entry-x")),
        other => panic!("{other:?}"),
    }
    let err = registry()
        .build(
            "macro_built",
            serde_json::json!({"user": ""}),
            &BuildContext::default(),
        )
        .err()
        .expect("refused");
    assert_eq!(
        err.to_string(),
        "cannot build backend type `macro_built`: `user` must not be empty"
    );
}

#[test]
fn registry_suggests_the_closest_type() {
    let err = Registry::from_inventory()
        .unwrap()
        .get("macro_tabel")
        .expect_err("unknown");
    match err {
        RegistryError::Unknown { suggestion, .. } => {
            assert_eq!(suggestion.as_deref(), Some("macro_table"))
        }
        other => panic!("{other:?}"),
    }
}

#[allow(dead_code)]
fn _factory_is_object_safe(f: Box<dyn BackendFactory>) -> Box<dyn BackendFactory> {
    f
}

/// Only optional options; one default that cannot parse.
#[auth_backend(type = "macro_optional", build = refuse_build)]
struct Optional {
    /// A value without `Debug`.
    label: Option<Label>,
    /// A path to a secret.
    key: Option<Secret>,
}

#[derive(serde::Deserialize)]
#[serde(transparent)]
struct Label(#[allow(dead_code)] String);

/// A default the macro cannot check: `std::time::Duration` is not auth-core's `Duration` (its
/// YAML form is a `{secs, nanos}` map), so only the start-up check and the load see it fail.
#[auth_backend(type = "macro_bad_default", build = refuse_build_bad)]
struct BadDefault {
    #[option(default = "five seconds")]
    timeout: std::time::Duration,
    /// A good default of a type the macro does not know.
    #[option(default = "a-label")]
    label: Label,
}

fn refuse_build(_: Optional, _: &BuildContext) -> Result<Arc<dyn Backend>, BuildError> {
    Err(BuildError::new("not built in tests"))
}

fn refuse_build_bad(_: BadDefault, _: &BuildContext) -> Result<Arc<dyn Backend>, BuildError> {
    Err(BuildError::new("not built in tests"))
}

#[test]
fn an_entry_without_options_parses_when_all_are_optional() {
    let o: Optional = serde_saphyr::from_str("{}\n").unwrap();
    assert!(o.label.is_none() && o.key.is_none());
    let err = serde_saphyr::from_str::<TableBackend>("{}\n")
        .err()
        .expect("users is required")
        .to_string();
    assert!(err.contains("missing field `users`"), "{err}");
}

#[test]
fn file_secrets_are_read_without_the_trailing_newline() {
    let path = std::env::temp_dir().join(format!("auth-macros-secret-{}", std::process::id()));
    std::fs::write(&path, "s3cret\n").unwrap();
    let yaml = format!("key: file:{}\n", path.display());
    let parsed = serde_saphyr::from_str::<Optional>(&yaml);
    std::fs::remove_file(&path).unwrap();
    let key = parsed.unwrap().key.expect("given");
    assert_eq!(key.expose(), "s3cret");
    assert!(!format!("{key:?}").contains("s3cret"));
}

#[test]
fn options_without_debug_are_shown_as_a_placeholder() {
    let factory = registry()
        .parse(
            "macro_optional",
            serde_json::json!({"label": "corp", "key": "k3y"}),
        )
        .unwrap();
    let shown = format!("{factory:?}");
    assert_eq!(
        shown,
        "Optional { type: \"macro_optional\", label: <no Debug>, key: Some(Secret(<redacted>)) }"
    );
}

#[test]
fn an_invalid_default_is_a_parse_error_not_a_panic() {
    let err = serde_saphyr::from_str::<BadDefault>("{}\n")
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("the default of option `timeout` is invalid") && err.contains("five seconds"),
        "{err}"
    );
    let given: BadDefault = serde_saphyr::from_str("timeout: {secs: 2, nanos: 0}\n").unwrap();
    assert_eq!(given.timeout, std::time::Duration::from_secs(2));
}

#[test]
fn defaults_the_macro_cannot_check_are_checked_at_start_up() {
    let errors = Registry::from_inventory()
        .unwrap()
        .check_defaults()
        .expect_err("one bad default");
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 1, "{shown:?}");
    assert_eq!(errors[0].type_name, "macro_bad_default");
    assert_eq!(errors[0].invalid.option, "timeout");
    assert_eq!(errors[0].invalid.default, "five seconds");
    assert!(
        shown[0].starts_with(
            "backend type `macro_bad_default` (`backend_macro::BadDefault`): the default of option `timeout` (`five seconds`) is invalid: "
        ) && shown[0].ends_with("; fix its `#[option(default = ...)]`"),
        "{}",
        shown[0]
    );
}

/// A YAML document holding one entry's options, parsed through its registration's `parse`
/// (type-erased), as the gateway's loader does.
struct ViaRegistration(Box<dyn BackendFactory>);

impl<'de> serde::Deserialize<'de> for ViaRegistration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut erased = <dyn erased_serde::Deserializer>::erase(d);
        (registration("macro_table").parse)(&mut erased)
            .map(ViaRegistration)
            .map_err(serde::de::Error::custom)
    }
}

#[test]
fn errors_through_the_registration_keep_their_yaml_location() {
    let ok: ViaRegistration =
        serde_saphyr::from_str("users:\n  alice: wonderland\ntimeout: 2s\n").unwrap();
    let shown = format!("{:?}", ok.0);
    assert!(
        shown.contains("timeout: 2s") && !shown.contains("wonderland"),
        "{shown}"
    );

    let err = serde_saphyr::from_str::<ViaRegistration>("users: {}\n\ntimout: 2s\n")
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("unknown field `timout`"), "{err}");
    // Through erased-serde the location reads "at line 3, column 1".
    assert!(err.contains("line 3") && err.contains("column 1"), "{err}");

    let err = serde_saphyr::from_str::<ViaRegistration>("users: {}\nmax_attempts: many\n")
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("line 2"), "{err}");
}

/// A backend without options.
#[auth_backend(type = "macro_no_options", build = build_no_options)]
struct NoOptions {
    #[option(skip)]
    state: Vec<u8>,
}

fn build_no_options(o: NoOptions, _: &BuildContext) -> Result<Arc<dyn Backend>, BuildError> {
    Err(BuildError::new(format!("{} bytes of state", o.state.len())))
}

#[test]
fn a_backend_without_options_refuses_every_key() {
    let reg = registration("macro_no_options");
    assert!(reg.options.is_empty());
    let o: NoOptions = serde_saphyr::from_str("{}\n").unwrap();
    assert!(o.state.is_empty());
    let err = serde_saphyr::from_str::<NoOptions>("state: [1]\n")
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("unknown field `state`: backend type `macro_no_options` takes no options")
            && err.contains("line 1 column 1"),
        "{err}"
    );
}

/// A token backend: `accepts` generates what the chain asks; `needs` what the gateway provides.
#[auth_backend(type = "macro_tokens", accepts = [bearer, api_key], needs = [user_store])]
struct Tokens {
    /// Token -> username.
    tokens: BTreeMap<String, String>,
}

#[async_trait]
impl Backend for Tokens {
    async fn authenticate(&self, credentials: &Credentials, _: &Context) -> Outcome {
        let token = match credentials {
            Credentials::Bearer(token) => token,
            Credentials::ApiKey { key, .. } => key,
            Credentials::Password { .. } => return Outcome::NotFound,
        };
        match self.tokens.get(token) {
            Some(user) => Outcome::Authenticated(User::new(user)),
            None => Outcome::NotFound,
        }
    }

    async fn get_user(&self, _: &str) -> Result<Option<User>, BackendError> {
        Ok(None)
    }
}

/// A hand-written `accepts` that the attribute (omitted: `[password]`) contradicts.
#[auth_backend(type = "macro_contradicted")]
struct Contradicted {}

#[async_trait]
impl Backend for Contradicted {
    fn accepts(&self, kind: CredentialKind) -> bool {
        kind == CredentialKind::Bearer
    }

    async fn authenticate(&self, _: &Credentials, _: &Context) -> Outcome {
        Outcome::NotFound
    }

    async fn get_user(&self, _: &str) -> Result<Option<User>, BackendError> {
        Ok(None)
    }
}

#[test]
fn needs_is_registered_and_absent_means_none() {
    let reg = registration("macro_tokens");
    assert_eq!(reg.needs, [auth_core::Service::UserStore]);
    assert!(reg.needs(auth_core::Service::UserStore));
    let plain = registration("macro_table");
    assert!(plain.needs.is_empty());
    assert!(!plain.needs(auth_core::Service::UserStore));
}

#[tokio::test]
async fn accepts_is_registered_and_answered_by_the_built_backend() {
    use CredentialKind::{ApiKey, Bearer, Password};
    let reg = registration("macro_tokens");
    assert_eq!(reg.accepts, [Bearer, ApiKey]);
    assert!(reg.runs_for_any(&[Password, Bearer]));
    assert!(
        !reg.runs_for_any(&[Password]),
        "a password-only gateway never runs it"
    );
    assert_eq!(
        registration("macro_table").accepts,
        [Password],
        "the default"
    );

    let backend = registry()
        .build(
            "macro_tokens",
            serde_json::json!({"tokens": {"t0k3n": "robot"}}),
            &BuildContext::new("tokens", "."),
        )
        .unwrap();
    assert!(backend.accepts(Bearer) && backend.accepts(ApiKey) && !backend.accepts(Password));
    let chain = auth_core::Chain::new(vec![auth_core::ChainEntry::new("tokens", backend)]);
    let out = chain
        .authenticate(&Credentials::Bearer("t0k3n".into()), &Context::default())
        .await;
    assert_eq!(
        out.outcome.user().map(|u| u.username.as_str()),
        Some("robot"),
        "{:?}",
        out.outcome
    );
}

#[test]
fn a_hand_written_accepts_that_disagrees_is_refused_at_build() {
    let err = registry()
        .build(
            "macro_contradicted",
            serde_json::json!({}),
            &BuildContext::default(),
        )
        .err()
        .expect("refused")
        .to_string();
    assert_eq!(
        err,
        "cannot build backend type `macro_contradicted`: backend type `macro_contradicted`: its hand-written `Backend::accepts` answers [bearer] but its `#[auth_backend]` declares [password] (`[password]` when `accepts` is omitted); declare the kinds in the attribute, `#[auth_backend(type = \"macro_contradicted\", accepts = [bearer])]`, and remove the hand-written `accepts`"
    );
}

/// A chain entry's YAML, as the gateway reads it: the options under their `options:` key.
#[derive(serde::Deserialize)]
struct EntryYaml {
    #[allow(dead_code)]
    name: String,
    #[allow(dead_code)]
    options: ViaRegistration,
}

#[test]
fn a_missing_required_option_is_reported_at_the_options_mapping() {
    let yaml = "name: t\noptions:\n  timeout: 1s\n  realm: corp\n  max_attempts: 3\n";
    let err = serde_saphyr::from_str::<EntryYaml>(yaml)
        .err()
        .expect("users is missing")
        .to_string();
    assert!(err.contains("missing field `users`"), "{err}");
    // The mapping starts on line 3, column 3; its last key is on line 5. Through the erased
    // boundary the message keeps no location of its own, so the mapping's is the only one.
    assert!(
        err.contains("line 3 column 3: missing field `users`"),
        "{err}"
    );
    assert!(!err.contains("line 5"), "blamed on the last key: {err}");
}
