//! The registry built from static registrations: duplicates and suggestions.

use auth_core::registry::{BackendFactory, BackendRegistration, RegistryError};
use auth_core::{BuildContext, ConfigPath, CredentialKind, InvalidDefault, Registry};

fn refuse(
    _: &mut dyn erased_serde::Deserializer<'_>,
) -> Result<Box<dyn BackendFactory>, erased_serde::Error> {
    Err(serde::de::Error::custom("not used"))
}

static DICTIONARY_A: BackendRegistration = BackendRegistration {
    type_name: "dictionary",
    description: "",
    options: &[],
    parse: refuse,
    rust_path: "crate_a::Dictionary",
    needs: &[],
    accepts: &[CredentialKind::Password],
    check_defaults: no_defaults,
};

static DICTIONARY_B: BackendRegistration = BackendRegistration {
    type_name: "dictionary",
    description: "",
    options: &[],
    parse: refuse,
    rust_path: "crate_b::Dictionary",
    needs: &[],
    accepts: &[CredentialKind::Password],
    check_defaults: no_defaults,
};

static HTPASSWD: BackendRegistration = BackendRegistration {
    type_name: "htpasswd",
    description: "",
    options: &[],
    parse: refuse,
    rust_path: "crate_c::Htpasswd",
    needs: &[],
    accepts: &[CredentialKind::Password],
    check_defaults: bad_default,
};

fn no_defaults() -> Vec<InvalidDefault> {
    Vec::new()
}

fn bad_default() -> Vec<InvalidDefault> {
    vec![InvalidDefault {
        option: "check_interval",
        default: "soon",
        message: "invalid duration `soon`".into(),
    }]
}

#[test]
fn two_registrations_of_one_name_are_refused() {
    let err = Registry::from_registrations([&DICTIONARY_A, &HTPASSWD, &DICTIONARY_B])
        .expect_err("duplicate");
    assert_eq!(
        err,
        RegistryError::Duplicate {
            type_name: "dictionary".into(),
            first: "crate_a::Dictionary".into(),
            second: "crate_b::Dictionary".into(),
        }
    );
    assert_eq!(
        err.to_string(),
        "backend type `dictionary` is registered twice: by `crate_a::Dictionary` and by `crate_b::Dictionary`"
    );
}

#[test]
fn a_misspelled_type_gets_a_suggestion() {
    let registry = Registry::from_registrations([&DICTIONARY_A, &HTPASSWD]).unwrap();
    let err = registry.get("dictionay").expect_err("unknown");
    assert_eq!(
        err.to_string(),
        "unknown backend type `dictionay`; did you mean `dictionary`? (known types: dictionary, htpasswd)"
    );
    let far = registry.get("kerberos").expect_err("unknown");
    assert_eq!(
        far.to_string(),
        "unknown backend type `kerberos` (known types: dictionary, htpasswd)"
    );
    assert_eq!(
        registry.get("htpasswd").unwrap().rust_path,
        "crate_c::Htpasswd"
    );
}

#[test]
fn check_defaults_names_the_type_and_option_of_each_bad_default() {
    let registry = Registry::from_registrations([&DICTIONARY_A, &HTPASSWD]).unwrap();
    let errors = registry.check_defaults().expect_err("one bad default");
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].to_string(),
        "backend type `htpasswd` (`crate_c::Htpasswd`): the default of option `check_interval` (`soon`) is invalid: invalid duration `soon`; fix its `#[option(default = ...)]`"
    );
    let fine = Registry::from_registrations([&DICTIONARY_A]).unwrap();
    assert_eq!(fine.check_defaults(), Ok(()));
}

#[test]
fn build_helpers_name_the_unknown_type() {
    let registry = Registry::from_registrations([&HTPASSWD]).unwrap();
    let err = registry
        .build("htpaswd", serde_json::json!({}), &BuildContext::default())
        .err()
        .expect("unknown");
    assert!(
        err.to_string()
            .starts_with("unknown backend type `htpaswd`; did you mean `htpasswd`?"),
        "{err}"
    );
    let err = registry
        .parse("htpasswd", serde_json::json!({}))
        .expect_err("refused");
    assert_eq!(
        err.to_string(),
        "invalid options for backend type `htpasswd`: not used"
    );
}

#[test]
fn config_paths_resolve_against_the_config_folder() {
    let ctx = BuildContext::new("e", "/etc/authgate");
    let relative: ConfigPath = serde_json::from_value(serde_json::json!("users.htpasswd")).unwrap();
    assert_eq!(
        relative.as_written(),
        std::path::Path::new("users.htpasswd")
    );
    assert_eq!(
        relative.resolve(&ctx),
        std::path::Path::new("/etc/authgate/users.htpasswd")
    );
    let absolute: ConfigPath = serde_json::from_value(serde_json::json!("/srv/users")).unwrap();
    assert_eq!(absolute.resolve(&ctx), std::path::Path::new("/srv/users"));
    let err = serde_json::from_value::<ConfigPath>(serde_json::json!(" "))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("a path must not be empty"), "{err}");
}
