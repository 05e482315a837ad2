//! `#[auth_backend]` used for real: what it registers, how its options parse from YAML, and how
//! the factory builds the backend.

use std::collections::BTreeMap;
use std::sync::Arc;

use auth_core::registry::{BackendFactory, BackendRegistration, RegistryError};
use auth_core::{
    Backend, BackendError, BuildContext, BuildError, Context, Credentials, Duration, OptionDoc,
    Outcome, Registry, Secret, User, async_trait, auth_backend,
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

fn registration(name: &str) -> &'static BackendRegistration {
    Registry::from_inventory()
        .expect("no duplicate registrations")
        .get(name)
        .expect("registered")
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
    let reg = registration("macro_table");
    let json = serde_json::json!({"users": {"alice": "wonderland"}, "bind_password": "hunter2"});
    let mut de = <dyn erased_serde::Deserializer>::erase(json);
    let factory = (reg.parse)(&mut de).expect("parses");
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
    let reg = registration("macro_built");
    let mut de = <dyn erased_serde::Deserializer>::erase(serde_json::json!({"user": "carol"}));
    let backend = (reg.parse)(&mut de)
        .unwrap()
        .build(&BuildContext::new("entry-x", "."))
        .unwrap();
    let out = backend
        .authenticate(&Credentials::password("carol", "x"), &Context::default())
        .await;
    match out {
        Outcome::Authenticated(u) => assert_eq!(u.display_name.as_deref(), Some("entry-x")),
        other => panic!("{other:?}"),
    }
    let mut de = <dyn erased_serde::Deserializer>::erase(serde_json::json!({"user": ""}));
    let err = (reg.parse)(&mut de)
        .unwrap()
        .build(&BuildContext::default())
        .err()
        .expect("refused");
    assert_eq!(err.to_string(), "`user` must not be empty");
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
struct Label(#[allow(dead_code)] String);

/// A default that is not a duration.
#[auth_backend(type = "macro_bad_default", build = refuse_build_bad)]
struct BadDefault {
    #[option(default = "five seconds")]
    timeout: Duration,
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
    let reg = registration("macro_optional");
    let mut de =
        <dyn erased_serde::Deserializer>::erase(serde_json::json!({"label": "corp", "key": "k3y"}));
    let shown = format!("{:?}", (reg.parse)(&mut de).unwrap());
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
    let given: BadDefault = serde_saphyr::from_str("timeout: 2s\n").unwrap();
    assert_eq!(given.timeout, Duration::from_secs(2));
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
