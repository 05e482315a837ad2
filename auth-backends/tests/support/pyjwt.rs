//! PyJWT (with `cryptography`) from PyPI in a cached virtualenv: an independent implementation
//! that makes the keys and signs the tokens the `jwt` backend's tests verify. The gateway's
//! end-to-end tests include this support module by `#[path]`, so paths go through the workspace.
//!
//! The virtualenv lives in `$PYJWT_VENV`, else `target/tmp/pyjwt-venv` (kept between runs); it
//! needs `python3` with `venv` (Debian `python3-venv`, installed by `scripts/test.sh`) and
//! network access to PyPI the first time.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

/// Runs `support/jwt_sign.py` with the virtualenv's Python.
pub struct PyJwt {
    python: PathBuf,
    script: PathBuf,
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn make_venv(dir: &Path) -> Result<PathBuf, String> {
    let python = dir.join("bin/python");
    let ready = dir.join(".ready");
    if ready.exists() {
        return Ok(python);
    }
    let _ = std::fs::remove_dir_all(dir);
    run(Command::new("python3").arg("-m").arg("venv").arg(dir))?;
    run(Command::new(dir.join("bin/pip")).args([
        "install",
        "-q",
        "--disable-pip-version-check",
        "PyJWT[crypto]>=2.8,<3",
    ]))?;
    std::fs::write(&ready, "").map_err(|e| e.to_string())?;
    Ok(python)
}

/// The helper, or `None` (after `service_missing`: a panic under `CI=true`) when the
/// virtualenv cannot be made.
pub fn pyjwt() -> Option<PyJwt> {
    static VENV: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let venv = VENV.get_or_init(|| {
        let dir = std::env::var_os("PYJWT_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("pyjwt-venv"));
        make_venv(&dir)
    });
    match venv {
        Ok(python) => Some(PyJwt {
            python: python.clone(),
            script: Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../auth-backends/tests/support/jwt_sign.py"),
        }),
        Err(e) => {
            super::service_missing("python3 -m venv with PyJWT from PyPI", e);
            None
        }
    }
}

impl PyJwt {
    fn call(&self, command: &str, input: &str) -> Value {
        let mut child = Command::new(&self.python)
            .arg(&self.script)
            .arg(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start jwt_sign.py");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write to jwt_sign.py");
        let out = child.wait_with_output().expect("jwt_sign.py");
        assert!(
            out.status.success(),
            "jwt_sign.py {command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("jwt_sign.py prints JSON")
    }

    /// Fresh keys: `{"rsa"|"rsa2"|"ec"|"ed": {"private", "public", "jwk"}}`, each JWK with its
    /// name as `kid`.
    pub fn keys(&self) -> Value {
        self.call("keys", "")
    }

    /// Tokens for `requests` (`{"alg", "key", "headers", "claims"}` or `{"forge_hmac", ...}`).
    pub fn sign(&self, requests: &[Value]) -> Vec<String> {
        serde_json::from_value(self.call("sign", &Value::from(requests.to_vec()).to_string()))
            .expect("a list of tokens")
    }
}
