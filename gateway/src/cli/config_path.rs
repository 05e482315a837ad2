//! Which config file a command reads when none is named on the command line.

use std::path::{Path, PathBuf};

/// Where an installed gateway keeps its config (the Debian package's conffile).
pub(crate) const SYSTEM_CONFIG: &str = "/etc/authgate/gateway.yaml";

/// The config in the working directory, used when it exists.
const LOCAL_CONFIG: &str = "gateway.yaml";

/// No config file was named and none was found where one is looked for.
#[derive(Debug, thiserror::Error)]
#[error(
    "no config file: none given with --config (or GATEWAY_CONFIG / AUTHGATE_CONFIG), and neither \
     ./{LOCAL_CONFIG} nor {SYSTEM_CONFIG} exists\n\
     `authgate init` writes a commented starter config to ./{LOCAL_CONFIG} \
     (`authgate init --help` lists the shapes: demo, htpasswd, ldap, django-sql)"
)]
pub(crate) struct NoConfig;

/// `--config` (or `GATEWAY_CONFIG`, read by clap), then `AUTHGATE_CONFIG`, then `./gateway.yaml`
/// when it exists, then [`SYSTEM_CONFIG`] when it exists. A named file is taken as named, even
/// when missing: its loader then says it cannot be read.
pub(crate) fn resolve(given: Option<PathBuf>) -> Result<PathBuf, NoConfig> {
    resolve_with(
        given,
        std::env::var_os("AUTHGATE_CONFIG").map(PathBuf::from),
        Path::new(SYSTEM_CONFIG),
    )
}

fn resolve_with(
    given: Option<PathBuf>,
    env: Option<PathBuf>,
    system: &Path,
) -> Result<PathBuf, NoConfig> {
    if let Some(path) = given.or(env).filter(|p| !p.as_os_str().is_empty()) {
        return Ok(path);
    }
    [Path::new(LOCAL_CONFIG), system]
        .into_iter()
        .find(|p| p.is_file())
        .map(Path::to_path_buf)
        .ok_or(NoConfig)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_file_wins_even_when_missing() {
        let got = resolve_with(
            Some("missing.yaml".into()),
            Some("env.yaml".into()),
            Path::new("/nonexistent/authgate.yaml"),
        );
        assert_eq!(got.ok(), Some(PathBuf::from("missing.yaml")));
        let got = resolve_with(None, Some("env.yaml".into()), Path::new("/nonexistent/x"));
        assert_eq!(got.ok(), Some(PathBuf::from("env.yaml")));
    }

    #[test]
    fn the_system_file_is_the_last_resort() {
        // Unit tests run in the crate's directory, which holds no gateway.yaml.
        assert!(!Path::new(LOCAL_CONFIG).exists());
        let dir = tempfile::tempdir().expect("tempdir");
        let system = dir.path().join("gateway.yaml");
        assert!(resolve_with(None, None, &system).is_err());
        std::fs::write(&system, "").expect("write");
        assert_eq!(resolve_with(None, None, &system).ok(), Some(system));
    }
}
