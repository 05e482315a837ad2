//! Option value types shared by every backend's config: [`Duration`], [`Secret`] and
//! [`ConfigPath`].

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer};

/// A duration written as `"500ms"`, `"30s"`, `"15m"`, `"8h"`, `"7d"` (or `0`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    /// The std duration.
    pub fn get(self) -> std::time::Duration {
        self.0
    }

    /// `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Duration(std::time::Duration::from_secs(secs))
    }

    /// `ms` milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Duration(std::time::Duration::from_millis(ms))
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        d.0
    }
}

impl fmt::Debug for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl FromStr for Duration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        auth_duration::parse(s).map(Duration)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"500ms\", \"30s\", \"15m\", \"8h\" or \"7d\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                if v == 0 {
                    Ok(Duration::default())
                } else {
                    Err(E::custom(format!(
                        "invalid duration `{v}`: a unit is required, e.g. \"{v}s\" or \"{v}ms\""
                    )))
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                if v < 0 {
                    return Err(E::custom(format!(
                        "invalid duration `{v}`: must not be negative"
                    )));
                }
                self.visit_u64(v as u64)
            }
        }
        d.deserialize_any(V)
    }
}

impl serde::Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A secret option: a literal, `env:NAME` (read from the environment) or `file:PATH` (read from
/// a file, trailing newline removed). Resolved when the config is loaded, so a missing variable
/// or file is a config error with its location. Never shown by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    value: String,
    source: SecretSource,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum SecretSource {
    Literal,
    Env(String),
    File(String),
}

impl Secret {
    /// A literal secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret {
            value: value.into(),
            source: SecretSource::Literal,
        }
    }

    /// Resolves `spec` (`env:NAME`, `file:PATH` or a literal).
    pub fn resolve(spec: &str) -> Result<Self, String> {
        if let Some(name) = spec.strip_prefix("env:") {
            let value = std::env::var(name).map_err(|_| {
                format!("environment variable `{name}` is not set (secret `env:{name}`)")
            })?;
            Ok(Secret {
                value,
                source: SecretSource::Env(name.to_string()),
            })
        } else if let Some(path) = spec.strip_prefix("file:") {
            let value = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read secret file `{path}`: {e}"))?;
            let value = value.strip_suffix('\n').unwrap_or(&value);
            let value = value.strip_suffix('\r').unwrap_or(value).to_string();
            Ok(Secret {
                value,
                source: SecretSource::File(path.to_string()),
            })
        } else {
            Ok(Secret::new(spec))
        }
    }

    /// The secret's value. Never log it.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// Whether the secret was written inline in the config.
    pub fn is_literal(&self) -> bool {
        self.source == SecretSource::Literal
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            SecretSource::Literal => f.write_str("Secret(<redacted>)"),
            SecretSource::Env(n) => write!(f, "Secret(env:{n}, <redacted>)"),
            SecretSource::File(p) => write!(f, "Secret(file:{p}, <redacted>)"),
        }
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spec = String::deserialize(d)?;
        Secret::resolve(&spec).map_err(de::Error::custom)
    }
}

/// A file path option, written relative to the configuration file's folder (or absolute).
/// Deserializes from a non-empty string; get the path to open with [`ConfigPath::resolve`] and
/// the entry's [`BuildContext`](crate::BuildContext), so `path: users.htpasswd` next to
/// `gateway.yaml` works whatever the gateway's working directory.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConfigPath(std::path::PathBuf);

impl ConfigPath {
    /// A path as written in a config.
    pub fn new(path: impl Into<std::path::PathBuf>) -> Self {
        ConfigPath(path.into())
    }

    /// The path as written (relative paths unresolved): for messages, not for opening.
    pub fn as_written(&self) -> &std::path::Path {
        &self.0
    }

    /// The path to open: resolved against the config file's folder when relative.
    pub fn resolve(&self, ctx: &crate::BuildContext) -> std::path::PathBuf {
        ctx.resolve_path(&self.0)
    }
}

impl<'de> Deserialize<'de> for ConfigPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text.trim().is_empty() {
            return Err(de::Error::custom(
                "a path must not be empty; write a file path, relative to the config file's folder or absolute",
            ));
        }
        Ok(ConfigPath(text.into()))
    }
}

impl serde::Serialize for ConfigPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0.display())
    }
}
