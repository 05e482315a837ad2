//! The fuzz targets' bodies (`gateway::__fuzz`, also run by libFuzzer from `fuzz/`) under
//! `cargo test`: every seed of `fuzz/corpus/<target>/`, then random inputs from proptest. This is
//! the always-on fallback of `scripts/fuzz.sh`: no coverage guidance, but the same invariants.

use proptest::prelude::*;

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out.sort();
    out
}

macro_rules! target {
    ($name:ident, $strategy:expr) => {
        mod $name {
            use super::*;

            #[test]
            fn seeds_hold_the_invariants() {
                for seed in seeds(stringify!($name)) {
                    gateway::__fuzz::$name(&seed);
                }
            }

            proptest! {
                #![proptest_config(ProptestConfig::with_cases(512))]
                #[test]
                fn random_inputs_hold_the_invariants(data in $strategy) {
                    gateway::__fuzz::$name(&data);
                }
            }
        }
    };
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..256)
}

/// Strings built from the characters the parser cares about.
fn text(alphabet: &'static str) -> impl Strategy<Value = Vec<u8>> {
    proptest::string::string_regex(alphabet)
        .unwrap()
        .prop_map(String::into_bytes)
}

target!(
    normalize_path,
    prop_oneof![
        bytes(),
        text("/([a-z.]|%2[eEfF]|%[0-9A-Fa-f]{2}|/|\\.\\.?|;|\\\\){0,24}")
    ]
);
target!(
    validate_next,
    prop_oneof![
        bytes(),
        text(
            "(/|//|https?://|HTTP://|javascript:)?([a-z.@:\\\\]|%[0-9A-Fa-f]{2}|gw\\.example\\.org|app\\.example\\.org|[\t\n])*"
        )
    ]
);
target!(
    basic_header,
    prop_oneof![
        bytes(),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(|raw| {
            use base64::Engine;
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            )
            .into_bytes()
        })
    ]
);
target!(
    login_form,
    prop_oneof![
        bytes(),
        text("((username|password|csrf|next|x)=([a-z+]|%[0-9A-Fa-f]{2})*&?){0,6}")
    ]
);
target!(session_cookie, bytes());
target!(
    config_load,
    prop_oneof![
        bytes(),
        text("([a-z_]+: ?([a-z0-9\"/:.]*|\\[|\\{|&a|\\*a|-)\n {0,4})*")
    ]
);
