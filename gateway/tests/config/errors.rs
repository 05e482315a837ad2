//! Snapshot tests of config diagnostics: each `tests/config/*.yaml` is loaded and what the
//! operator would see (errors, or `OK` and warnings) is compared exactly with the `.expected`
//! file beside it. `UPDATE_SNAPSHOTS=1 cargo test -p gateway --test config` rewrites them.

use std::path::{Path, PathBuf};

fn render(path: &Path) -> String {
    match gateway::__test::load(path) {
        Ok(loaded) => {
            let mut out = String::from("OK\n");
            for w in &loaded.warnings {
                out.push_str(&format!("{w}\n"));
            }
            out
        }
        Err(errors) => format!("{errors}\n"),
    }
}

fn cases() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir("tests/config")
        .expect("tests/config exists")
        .map(|e| e.expect("readable dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_config_case_matches_its_snapshot() {
    let update = std::env::var("UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1");
    let cases = cases();
    assert!(
        cases.len() >= 20,
        "expected at least 20 cases, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let actual = render(case);
        let expected_path = case.with_extension("expected");
        if update {
            std::fs::write(&expected_path, &actual).expect("write snapshot");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if actual != expected {
            failures.push(format!(
                "--- {}\n expected:\n{expected}\n actual:\n{actual}",
                case.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "snapshot mismatches:\n{}",
        failures.join("\n")
    );
}

#[test]
fn bad_cases_fail_and_good_cases_load() {
    for case in cases() {
        let name = case
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let result = gateway::__test::load(&case);
        if name.starts_with("good_") {
            assert!(
                result.is_ok(),
                "{name} should load: {}",
                result.err().map(|e| e.to_string()).unwrap_or_default()
            );
        } else {
            let errors = result.err().unwrap_or_else(|| panic!("{name} should fail"));
            for d in errors.diagnostics() {
                assert!(d.is_error());
                assert!(
                    d.to_string().starts_with(&format!("{}", case.display())),
                    "{d}"
                );
            }
        }
    }
}
