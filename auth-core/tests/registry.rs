//! The registry built from static registrations: duplicates and suggestions.

use auth_core::Registry;
use auth_core::registry::{BackendFactory, BackendRegistration, RegistryError};

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
};

static DICTIONARY_B: BackendRegistration = BackendRegistration {
    type_name: "dictionary",
    description: "",
    options: &[],
    parse: refuse,
    rust_path: "crate_b::Dictionary",
};

static HTPASSWD: BackendRegistration = BackendRegistration {
    type_name: "htpasswd",
    description: "",
    options: &[],
    parse: refuse,
    rust_path: "crate_c::Htpasswd",
};

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
