//! Reading a config file: two parse passes (see [`super::chain`]), then every semantic check.

use std::path::{Path, PathBuf};

use auth_core::Registry;
use serde_saphyr::{DuplicateKeyPolicy, Location, Options};

use super::chain::{Pass, with_pass};
use super::diagnostic::sort;
use super::key_locations::KeyLocations;
use super::model::Config;
use super::{ConfigErrors, Diagnostic, parse_error, validate};

/// A config that parsed and passed every check.
#[derive(Debug)]
pub struct LoadedConfig {
    /// The model. Chain entries hold their parsed options until [`super::build_chain`] takes them.
    pub config: Config,
    /// The file it came from (or the source name given to [`load_str`]).
    pub source: PathBuf,
    /// Directory that relative paths in the config are resolved against (the file's).
    pub base_dir: PathBuf,
    /// Things worth a look that do not stop the config (plain-text passwords...).
    pub warnings: Vec<Diagnostic>,
    /// The secrets written in the file itself (see [`super::readable_secrets`]).
    pub literal_secrets: Vec<super::LiteralSecret>,
    /// The shared services the chain's backend types declare they need
    /// (`#[auth_backend(needs = [...])]`).
    needs: Vec<auth_core::Service>,
}

impl LoadedConfig {
    /// `data_dir`, resolved against the config's directory; defaults to `<config dir>/data`.
    pub fn data_dir(&self) -> PathBuf {
        resolve_data_dir(&self.config, &self.base_dir)
    }

    /// Whether a backend type of the chain declares it needs `service`.
    pub fn chain_needs(&self, service: auth_core::Service) -> bool {
        self.needs.contains(&service)
    }

    /// The local user store URL: `users_db`, or `sqlite://<data_dir>/users.db` when absent.
    /// A relative SQLite path is resolved against the config's directory.
    pub fn users_db_url(&self) -> String {
        users_db_url(&self.config, &self.base_dir)
    }
}

pub(crate) fn resolve_data_dir(config: &Config, base_dir: &Path) -> PathBuf {
    base_dir.join(config.data_dir.as_deref().unwrap_or("data"))
}

pub(crate) fn users_db_url(config: &Config, base_dir: &Path) -> String {
    match &config.users_db {
        Some(url) => match url.value.get() {
            Some(sql) => sql.resolved(base_dir).as_str().to_string(),
            None => url.value.written().to_string(),
        },
        None => format!(
            "sqlite://{}",
            resolve_data_dir(config, base_dir)
                .join("users.db")
                .display()
        ),
    }
}

/// Loads and checks the config file at `path`. Relative paths inside it are resolved against
/// its directory. Parse errors (syntax, unknown key, wrong type, duplicate key) come one at a
/// time, because the YAML parser stops at the first; once the file parses, every semantic error
/// is reported at once.
pub fn load(path: &Path) -> Result<LoadedConfig, ConfigErrors> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigErrors::file(path, format!("cannot read the config file: {e}")))?;
    load_str(&path.display().to_string(), &text, &base_dir_of(path))
}

/// The directory relative paths in the config file at `path` are resolved against: the file's.
pub(crate) fn base_dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Loads and checks config `text`; `source_name` names it in diagnostics and `base_dir` is
/// where its relative paths point. Uses every backend type linked into the binary.
pub fn load_str(
    source_name: &str,
    text: &str,
    base_dir: &Path,
) -> Result<LoadedConfig, ConfigErrors> {
    let file = PathBuf::from(source_name);
    let registry =
        Registry::from_inventory().map_err(|e| ConfigErrors::file(&file, e.to_string()))?;
    // A default that does not parse is the backend author's bug: refuse to start on it rather
    // than blame the operator's file when they leave the key out.
    registry.check_defaults().map_err(|bad| {
        ConfigErrors(
            bad.iter()
                .map(|e| {
                    Diagnostic::error(
                        &file,
                        Location::UNKNOWN,
                        format!("{e} (in the backend's code, not in this file)"),
                    )
                })
                .collect(),
        )
    })?;

    let (survey, pass) = with_pass(Pass::survey(), || parse(text));
    let surveyed = survey.map_err(|e| ConfigErrors(vec![parse_error::diagnostic(&file, &e)]))?;
    let (mut warnings, scans): (Vec<Diagnostic>, _) = match pass {
        Pass::Survey {
            warnings, scans, ..
        } => (
            warnings
                .into_iter()
                .map(|(loc, msg)| Diagnostic::warning(&file, loc, msg))
                .collect(),
            scans,
        ),
        Pass::Parse { .. } => (Vec::new(), Vec::new()),
    };

    let mut errors = Vec::new();
    let registrations: Vec<_> = surveyed
        .chain
        .iter()
        .map(|entry| match registry.get(&entry.type_name.value) {
            Ok(reg) => Some(reg),
            Err(e) => {
                let message = if registry.names().next().is_none() {
                    format!(
                        "unknown backend type `{}`: no backend types are registered in this build",
                        entry.type_name.value
                    )
                } else {
                    e.to_string()
                };
                errors.push(Diagnostic::error(
                    &file,
                    location(&entry.type_name),
                    message,
                ));
                None
            }
        })
        .collect();
    drop(surveyed);

    let (parsed, _) = with_pass(
        Pass::Parse {
            registrations: registrations.clone(),
            current: 0,
        },
        || parse(text),
    );
    let mut config = match parsed {
        Ok(config) => config,
        Err(e) => {
            errors.push(parse_error::diagnostic(&file, &e));
            sort(&mut errors);
            return Err(ConfigErrors(errors));
        }
    };

    // Entries without `options` still get their defaults checked (and required keys reported).
    for (entry, reg) in config.chain.iter_mut().zip(&registrations) {
        let Some(reg) = reg else { continue };
        if entry.options.is_some() {
            continue;
        }
        let empty = serde::de::value::MapDeserializer::<_, serde::de::value::Error>::new(
            std::iter::empty::<(String, String)>(),
        );
        let mut erased = <dyn erased_serde::Deserializer>::erase(empty);
        match (reg.parse)(&mut erased) {
            Ok(factory) => entry.options = Some(factory),
            Err(e) => errors.push(Diagnostic::error(
                &file,
                location(&entry.name),
                format!(
                    "entry `{}` (type `{}`) needs `options`: {}",
                    entry.name.value,
                    entry.type_name.value,
                    parse_error::polish(&e.to_string())
                ),
            )),
        }
    }

    let (semantic_errors, semantic_warnings) = validate::check(
        &config,
        &registrations,
        &file,
        base_dir,
        &KeyLocations::of(text),
    );
    errors.extend(semantic_errors);
    warnings.extend(semantic_warnings);
    let produced = config.produced_credentials();
    for (entry, reg) in config.chain.iter().zip(&registrations) {
        if let Some(reg) = reg.filter(|reg| !reg.runs_for_any(&produced)) {
            let kinds: Vec<&str> = reg
                .accepts
                .iter()
                .map(|k| auth_core::registry::kind_name(*k))
                .collect();
            warnings.push(Diagnostic::warning(
                &file,
                location(&entry.type_name),
                format!(
                    "entry `{}` (type `{}`) accepts only {} credentials, which this gateway never reads from a request: it is skipped for every request",
                    entry.name.value,
                    entry.type_name.value,
                    kinds.join(", ")
                ),
            ));
        }
    }
    sort(&mut warnings);
    if !errors.is_empty() {
        sort(&mut errors);
        return Err(ConfigErrors(errors));
    }
    let literal_secrets = super::exposure::literal_secrets(&config, &scans, &registrations);
    // The stores open these later, wherever the process runs: relative to the config file.
    for ca in [
        &mut config.session.redis_ca_file,
        &mut config.protection.redis_ca_file,
    ]
    .into_iter()
    .flatten()
    {
        ca.value = base_dir.join(&ca.value).display().to_string();
    }
    let mut needs: Vec<auth_core::Service> = Vec::new();
    for service in registrations.iter().flatten().flat_map(|r| r.needs) {
        if !needs.contains(service) {
            needs.push(*service);
        }
    }
    Ok(LoadedConfig {
        config,
        source: file,
        base_dir: base_dir.to_path_buf(),
        warnings,
        literal_secrets,
        needs,
    })
}

fn parse(text: &str) -> Result<Config, serde_saphyr::Error> {
    let mut options = Options::default();
    options.duplicate_keys = DuplicateKeyPolicy::Error;
    // A tag (`!!python/object:...`, `!custom`) means something to some other YAML reader;
    // silently dropping it would load a config other than the one the author meant.
    options.reject_unsupported_tags = true;
    options.reject_tagged_field_names = true;
    serde_saphyr::from_str_with_options(text, options)
}

/// Where a spanned value was written.
pub(crate) fn location<T>(s: &serde_saphyr::Spanned<T>) -> Location {
    if s.referenced != Location::UNKNOWN {
        s.referenced
    } else {
        s.defined
    }
}

#[cfg(test)]
mod tests {
    use auth_core::{
        Backend, BackendError, Context, Credentials, Outcome, User, async_trait, auth_backend,
    };

    /// A backend for API keys only: no request the gateway reads today can reach it.
    #[auth_backend(type = "unit_api_key_only", accepts = [api_key])]
    struct ApiKeyOnly {}

    #[async_trait]
    impl Backend for ApiKeyOnly {
        async fn authenticate(&self, _: &Credentials, _: &Context) -> Outcome {
            Outcome::NotFound
        }

        async fn get_user(&self, _: &str) -> Result<Option<User>, BackendError> {
            Ok(None)
        }
    }

    const CONFIG: &str = "server:\n  public_url: \"http://127.0.0.1:8080\"\nupstream:\n  url: \"http://127.0.0.1:9\"\nsession:\n  secure: false\n  secret: \"0123456789abcdef0123456789abcdef-test\"\nchain:\n  - name: keys\n    type: unit_api_key_only\n  - name: demo\n    type: static\n    options:\n      users: {}\n";

    #[test]
    fn an_entry_that_no_request_can_reach_is_warned_about_at_its_type() {
        let loaded = super::load_str("gw.yaml", CONFIG, std::path::Path::new(".")).unwrap();
        let shown: Vec<String> = loaded
            .warnings
            .iter()
            .map(ToString::to_string)
            .filter(|w| w.contains("entry"))
            .collect();
        assert_eq!(
            shown,
            vec![
                "gw.yaml:10:11: warning: entry `keys` (type `unit_api_key_only`) accepts only api_key credentials, which this gateway never reads from a request: it is skipped for every request"
            ],
        );
    }

    #[test]
    fn an_api_key_entry_is_reachable_once_a_key_header_is_configured() {
        let config = CONFIG.replace(
            "chain:\n",
            "login:\n  api_key_headers: [X-Api-Key]\nchain:\n",
        );
        let loaded = super::load_str("gw.yaml", &config, std::path::Path::new(".")).unwrap();
        let shown: Vec<String> = loaded
            .warnings
            .iter()
            .map(ToString::to_string)
            .filter(|w| w.contains("entry"))
            .collect();
        assert_eq!(shown, Vec::<String>::new());
    }
}
