//! Store URLs: the one list of schemes, parsed into a [`StoreUrl`] that knows its SQL dialect or
//! that it is Redis, with the normalisations every store needs (`mariadb://` is MySQL's driver,
//! a relative SQLite path is relative to a directory the caller names) and a redacted form for
//! `Debug`, logs and error messages.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The SQL databases a store can live in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// SQLite (`sqlite://PATH`, `sqlite::memory:`).
    Sqlite,
    /// PostgreSQL (`postgres://`, `postgresql://`).
    Postgres,
    /// MySQL or MariaDB (`mysql://`, `mariadb://`).
    MySql,
}

/// What a scheme names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SchemeKind {
    Sql(Dialect),
    Redis { tls: bool },
}

/// The one list of store URL schemes.
const SCHEMES: &[(&str, SchemeKind)] = &[
    ("sqlite", SchemeKind::Sql(Dialect::Sqlite)),
    ("postgres", SchemeKind::Sql(Dialect::Postgres)),
    ("postgresql", SchemeKind::Sql(Dialect::Postgres)),
    ("mysql", SchemeKind::Sql(Dialect::MySql)),
    ("mariadb", SchemeKind::Sql(Dialect::MySql)),
    ("redis", SchemeKind::Redis { tls: false }),
    ("rediss", SchemeKind::Redis { tls: true }),
];

/// The SQL URL forms, for messages.
pub const SQL_FORMS: &[&str] = &[
    "sqlite://PATH",
    "postgres://...",
    "mysql://...",
    "mariadb://...",
];

/// The Redis URL forms, for messages.
pub const REDIS_FORMS: &[&str] = &["redis://...", "rediss://..."];

/// `words`, then the SQL forms (`sql`) and the Redis forms (`redis`), as `a, b, c or d`: what a
/// message says a setting takes.
pub fn expected_forms(words: &[&str], sql: bool, redis: bool) -> String {
    let mut all: Vec<&str> = words.to_vec();
    if sql {
        all.extend(SQL_FORMS);
    }
    if redis {
        all.extend(REDIS_FORMS);
    }
    match all.split_last() {
        Some((last, [])) => (*last).to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// A store URL that is not one of the known forms. Its message shows the URL redacted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreUrlError {
    /// No `scheme:` at all (`memry`).
    #[error("`{0}` is not a URL")]
    NotAUrl(String),
    /// A scheme no store speaks (`mongodb://`).
    #[error("unknown scheme `{scheme}:` in `{url}`")]
    UnknownScheme {
        /// The scheme, as written.
        scheme: String,
        /// The URL, redacted.
        url: String,
    },
    /// Nothing after the scheme (`redis://`, `sqlite://`).
    #[error("`{0}` names no database or server")]
    Empty(String),
}

/// A parsed store URL: SQL (with its dialect) or Redis. Equal when written the same (after
/// trimming), so a reload can compare them. `Debug` and `Display` hide a password.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum StoreUrl {
    /// A SQL database.
    Sql(SqlUrl),
    /// A Redis server.
    Redis(RedisUrl),
}

/// A SQL database URL (`sqlite://PATH`, `sqlite::memory:`, `postgres://...`, `mysql://...`,
/// `mariadb://...`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SqlUrl {
    dialect: Dialect,
    url: String,
}

/// A Redis URL (`redis://...`, or `rediss://...` for Redis over TLS).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RedisUrl {
    url: String,
    tls: bool,
}

impl FromStr for StoreUrl {
    type Err = StoreUrlError;

    fn from_str(s: &str) -> Result<StoreUrl, StoreUrlError> {
        let url = s.trim();
        let Some((scheme, rest)) = url.split_once(':') else {
            return Err(StoreUrlError::NotAUrl(redact(url)));
        };
        let Some(&(_, kind)) = SCHEMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(scheme))
        else {
            return Err(StoreUrlError::UnknownScheme {
                scheme: scheme.to_string(),
                url: redact(url),
            });
        };
        // `sqlite:` may be followed by a path directly (`sqlite::memory:`, `sqlite:x.db`); the
        // network schemes need `//host`.
        let rest = match kind {
            SchemeKind::Sql(Dialect::Sqlite) => rest.strip_prefix("//").unwrap_or(rest),
            _ => rest.strip_prefix("//").unwrap_or(""),
        };
        if rest.is_empty() || rest.starts_with('?') {
            return Err(StoreUrlError::Empty(redact(url)));
        }
        Ok(match kind {
            SchemeKind::Sql(dialect) => StoreUrl::Sql(SqlUrl {
                dialect,
                url: url.to_string(),
            }),
            SchemeKind::Redis { tls } => StoreUrl::Redis(RedisUrl {
                url: url.to_string(),
                tls,
            }),
        })
    }
}

impl StoreUrl {
    /// Parses `s` (surrounding blanks ignored).
    pub fn parse(s: &str) -> Result<StoreUrl, StoreUrlError> {
        s.parse()
    }

    /// The URL as written (trimmed). It may hold a password: show [`StoreUrl::redacted`].
    pub fn as_str(&self) -> &str {
        match self {
            StoreUrl::Sql(u) => &u.url,
            StoreUrl::Redis(u) => &u.url,
        }
    }

    /// The URL with its password, if any, replaced.
    pub fn redacted(&self) -> String {
        redact(self.as_str())
    }
}

impl SqlUrl {
    /// Parses `s` as a SQL URL; a Redis URL is an error naming the SQL forms.
    pub fn parse(s: &str) -> Result<SqlUrl, String> {
        match StoreUrl::parse(s) {
            Ok(StoreUrl::Sql(u)) => Ok(u),
            Ok(StoreUrl::Redis(u)) => Err(format!(
                "`{}` is Redis; expected {}",
                u.redacted(),
                expected_forms(&[], true, false)
            )),
            Err(e) => Err(format!(
                "{e}; expected {}",
                expected_forms(&[], true, false)
            )),
        }
    }

    /// The database's dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The URL as written (trimmed). It may hold a password: show [`SqlUrl::redacted`].
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The URL with its password, if any, replaced.
    pub fn redacted(&self) -> String {
        redact(&self.url)
    }

    /// The URL the sqlx driver takes: `mariadb:` is spelled `mysql:`.
    pub fn driver_url(&self) -> String {
        match self.url.split_once(':') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("mariadb") => {
                format!("mysql:{rest}")
            }
            _ => self.url.clone(),
        }
    }

    /// SQLite: the path (or `:memory:`) and the query string (without `?`).
    fn sqlite_parts(&self) -> Option<(&str, &str)> {
        if self.dialect != Dialect::Sqlite {
            return None;
        }
        let rest = &self.url[self.url.find(':').map_or(0, |i| i + 1)..];
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        Some(rest.split_once('?').unwrap_or((rest, "")))
    }

    /// Whether this is an in-memory SQLite database (each connection its own database).
    pub fn is_memory(&self) -> bool {
        self.sqlite_parts()
            .is_some_and(|(path, query)| path == ":memory:" || query.contains("mode=memory"))
    }

    /// The SQLite file, if this is a SQLite URL with a file.
    pub fn sqlite_file(&self) -> Option<&Path> {
        match self.sqlite_parts() {
            Some((path, _)) if !path.is_empty() && !path.starts_with(':') => Some(Path::new(path)),
            _ => None,
        }
    }

    /// This URL with a relative SQLite path made relative to `base` instead of the process's
    /// working directory; other URLs unchanged.
    pub fn resolved(&self, base: &Path) -> SqlUrl {
        let Some((_, query)) = self.sqlite_parts() else {
            return self.clone();
        };
        match self.sqlite_file() {
            Some(file) if file.is_relative() => {
                let file: PathBuf = base.join(file);
                let query = if query.is_empty() {
                    String::new()
                } else {
                    format!("?{query}")
                };
                SqlUrl {
                    dialect: self.dialect,
                    url: format!("sqlite://{}{query}", file.display()),
                }
            }
            _ => self.clone(),
        }
    }

    /// For a store that creates its database when missing: a SQLite file's directory is
    /// created and `mode=rwc` added unless the URL sets a `mode`. Other URLs unchanged.
    pub fn creating(&self) -> Result<SqlUrl, String> {
        let Some((path, query)) = self.sqlite_parts() else {
            return Ok(self.clone());
        };
        if path.starts_with(":memory:") || query.contains("mode=") {
            return Ok(self.clone());
        }
        if path.is_empty() {
            return Err("sqlite:// URL without a path".into());
        }
        if let Some(parent) = Path::new(path).parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create directory `{}`: {e}", parent.display()))?;
        }
        let separator = if self.url.contains('?') { '&' } else { '?' };
        Ok(SqlUrl {
            dialect: self.dialect,
            url: format!("{}{separator}mode=rwc", self.url),
        })
    }
}

impl RedisUrl {
    /// Parses `s` as a Redis URL; a SQL URL is an error naming the Redis forms.
    pub fn parse(s: &str) -> Result<RedisUrl, String> {
        match StoreUrl::parse(s) {
            Ok(StoreUrl::Redis(u)) => Ok(u),
            Ok(StoreUrl::Sql(u)) => Err(format!(
                "`{}` is SQL; expected {}",
                u.redacted(),
                expected_forms(&[], false, true)
            )),
            Err(e) => Err(format!(
                "{e}; expected {}",
                expected_forms(&[], false, true)
            )),
        }
    }

    /// Whether this is `rediss://` (Redis over TLS).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The URL as written (trimmed). It may hold a password: show [`RedisUrl::redacted`].
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The URL with its password, if any, replaced.
    pub fn redacted(&self) -> String {
        redact(&self.url)
    }
}

/// `url` with its password replaced by `REDACTED`. Text that does not parse as a URL is shown
/// as is unless it has a `@` (it might then hold credentials), which is hidden whole.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("REDACTED"));
            u.to_string()
        }
        Ok(_) => url.to_string(),
        Err(_) if url.contains('@') => "<unparsed url, hidden>".to_string(),
        Err(_) => url.to_string(),
    }
}

macro_rules! redacted_fmt {
    ($($ty:ty),*) => {$(
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.redacted(), f)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.redacted())
            }
        }
    )*};
}

redacted_fmt!(StoreUrl, SqlUrl, RedisUrl);

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(s: &str) -> SqlUrl {
        SqlUrl::parse(s).unwrap()
    }

    #[test]
    fn every_scheme_has_its_kind() {
        let cases = [
            ("sqlite://x.db", Some(Dialect::Sqlite)),
            ("sqlite::memory:", Some(Dialect::Sqlite)),
            ("postgres://u@h/db", Some(Dialect::Postgres)),
            ("PostgreSQL://u@h/db", Some(Dialect::Postgres)),
            ("mysql://u@h/db", Some(Dialect::MySql)),
            ("mariadb://u@h/db", Some(Dialect::MySql)),
            ("redis://h:6379", None),
        ];
        for (url, dialect) in cases {
            match StoreUrl::parse(url).unwrap() {
                StoreUrl::Sql(u) => assert_eq!(Some(u.dialect()), dialect, "{url}"),
                StoreUrl::Redis(u) => {
                    assert_eq!(dialect, None, "{url}");
                    assert!(!u.is_tls());
                }
            }
        }
        assert!(RedisUrl::parse("rediss://h").unwrap().is_tls());
    }

    #[test]
    fn unknown_or_empty_urls_are_refused() {
        assert!(matches!(
            StoreUrl::parse("mongodb://db/x"),
            Err(StoreUrlError::UnknownScheme { scheme, .. }) if scheme == "mongodb"
        ));
        assert!(matches!(
            StoreUrl::parse("memry"),
            Err(StoreUrlError::NotAUrl(_))
        ));
        for empty in ["redis://", "sqlite://", "postgres:x", "sqlite:?mode=ro"] {
            assert!(
                matches!(StoreUrl::parse(empty), Err(StoreUrlError::Empty(_))),
                "{empty}"
            );
        }
        assert!(SqlUrl::parse("redis://h").unwrap_err().contains("is Redis"));
        assert!(
            RedisUrl::parse("sqlite://x")
                .unwrap_err()
                .contains("is SQL")
        );
    }

    #[test]
    fn mariadb_is_the_mysql_driver() {
        assert_eq!(sql("mariadb://u@h/db").driver_url(), "mysql://u@h/db");
        assert_eq!(sql("mysql://u@h/db").driver_url(), "mysql://u@h/db");
        assert_eq!(sql("postgres://u@h/db").driver_url(), "postgres://u@h/db");
    }

    #[test]
    fn relative_sqlite_paths_resolve_against_the_base() {
        let base = Path::new("/srv/gw");
        assert_eq!(
            sql("sqlite://state/s.db?mode=ro").resolved(base).as_str(),
            "sqlite:///srv/gw/state/s.db?mode=ro"
        );
        assert_eq!(
            sql("sqlite:x.db").resolved(base).as_str(),
            "sqlite:///srv/gw/x.db"
        );
        for unchanged in ["sqlite:///abs/s.db", "sqlite::memory:", "postgres://u@h/db"] {
            assert_eq!(sql(unchanged).resolved(base).as_str(), unchanged);
        }
    }

    #[test]
    fn creating_adds_rwc_and_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a/b/users.db");
        let url = sql(&format!("sqlite://{}", file.display()))
            .creating()
            .unwrap();
        assert_eq!(
            url.as_str(),
            format!("sqlite://{}?mode=rwc", file.display())
        );
        assert!(dir.path().join("a/b").is_dir());
        let with_query = sql(&format!("sqlite://{}?cache=shared", file.display()));
        assert!(
            with_query
                .creating()
                .unwrap()
                .as_str()
                .ends_with("?cache=shared&mode=rwc")
        );
        for unchanged in ["sqlite::memory:", "sqlite://x.db?mode=ro", "mysql://u@h/d"] {
            assert_eq!(sql(unchanged).creating().unwrap().as_str(), unchanged);
        }
        assert!(sql("sqlite::memory:").is_memory());
        assert!(!sql("sqlite://x.db").is_memory());
    }

    #[test]
    fn forms_read_as_a_list() {
        assert_eq!(
            expected_forms(&["memory"], false, true),
            "memory, redis://... or rediss://..."
        );
        assert_eq!(
            expected_forms(&[], true, false),
            "sqlite://PATH, postgres://..., mysql://... or mariadb://..."
        );
    }

    #[test]
    fn passwords_never_show() {
        let url = StoreUrl::parse("postgres://app:hunter2@db/x").unwrap();
        for shown in [format!("{url:?}"), url.to_string(), url.redacted()] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("REDACTED"), "{shown}");
        }
        assert_eq!(redact("redis://h:6379"), "redis://h:6379");
        assert_eq!(redact("memry"), "memry");
        assert!(!redact("not a url: user:pw@host").contains("pw"));
        let err = StoreUrl::parse("mongodb://u:hunter2@h/x").unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
    }
}
