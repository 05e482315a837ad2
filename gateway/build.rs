//! Records the git commit the binary is built from, for `authgate --version`.
//!
//! `AUTHGATE_COMMIT` in the environment wins (a build from a tarball or a container context
//! without `.git` can pass it); otherwise `git rev-parse --short HEAD`; otherwise `unknown`. A
//! build never fails for want of git.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=AUTHGATE_COMMIT");
    let commit = std::env::var("AUTHGATE_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=AUTHGATE_COMMIT={}", commit.trim());
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// The short commit, and rebuild triggers on what moves it: `HEAD` (a checkout) and the branch
/// it points to (a commit). Only files that exist are watched: Cargo reruns a build script on
/// every build when a watched file is missing.
fn git_commit() -> Option<String> {
    let commit = git(&["rev-parse", "--short", "HEAD"])?;
    let git_dir = git(&["rev-parse", "--git-dir"]).map(PathBuf::from);
    let common_dir = git(&["rev-parse", "--git-common-dir"]).map(PathBuf::from);
    if let Some(dir) = &git_dir {
        watch(&dir.join("HEAD"));
    }
    if let (Some(dir), Some(branch)) = (
        common_dir.or(git_dir),
        git(&["rev-parse", "--symbolic-full-name", "HEAD"]),
    ) {
        watch(&dir.join(&branch));
        watch(&dir.join("packed-refs"));
    }
    Some(commit)
}

fn watch(path: &Path) {
    if path.is_file() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
