//! Which config keys a reload applies and which need a restart: one table, read by the
//! reloader (its log) and by `authgate check` (its output).
//!
//! Contract:
//! - every key of the model has a row (a section's row covers the keys under it);
//! - a key marked [`OnReload::Restart`] names the value the process keeps from its start: a
//!   reload that changes it applies everything else, keeps that value and says so;
//! - only key names and the values of restart keys (never secrets) are reported.

use super::model::Config;

/// How a reload treats a key.
#[derive(Clone, Copy)]
pub(crate) enum OnReload {
    /// Applied to the requests and connections that start after the reload; the `&str` says how.
    Applied(&'static str),
    /// Kept from the process start: reads the value whose change needs a restart.
    Restart(fn(&Config) -> String),
}

impl std::fmt::Debug for OnReload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OnReload::Applied(how) => f.debug_tuple("Applied").field(how).finish(),
            OnReload::Restart(_) => f.write_str("Restart"),
        }
    }
}

/// One key (dotted path) and how a reload treats it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyRule {
    /// The dotted key, e.g. `server.listen`; a section name covers every key under it.
    pub key: &'static str,
    /// What a reload does with it.
    pub on_reload: OnReload,
}

const fn applied(key: &'static str, how: &'static str) -> KeyRule {
    KeyRule {
        key,
        on_reload: OnReload::Applied(how),
    }
}

const fn restart(key: &'static str, value: fn(&Config) -> String) -> KeyRule {
    KeyRule {
        key,
        on_reload: OnReload::Restart(value),
    }
}

/// Every key of the config and how a reload treats it.
pub(crate) const KEY_RULES: &[KeyRule] = &[
    applied(
        "server.listen",
        "new addresses are bound (the reload fails if one cannot be), removed ones stop accepting and drain, unchanged ones keep their connections",
    ),
    applied(
        "server.tls",
        "the certificate and key are re-read on every reload; new connections get them (or plain HTTP when removed), open ones keep theirs",
    ),
    applied("server.public_url", "new requests"),
    applied("server.trusted_proxies", "new requests"),
    applied("server.header_read_timeout", "new connections"),
    applied("server.max_header_bytes", "new connections"),
    applied("server.max_login_body_bytes", "new requests"),
    applied("server.shutdown_grace", "the next drain"),
    applied(
        "admin",
        "the admin listener is bound, moved or closed like server.listen",
    ),
    restart("upstream.demo", |c| c.upstream.demo.to_string()),
    applied("upstream", "new requests (the connection pool is rebuilt)"),
    applied("identity_headers", "new requests"),
    applied(
        "session",
        "new requests; sessions survive unless the store, secret or cookie settings change",
    ),
    applied("login", "new requests (templates are re-read)"),
    applied(
        "protection",
        "new requests; lockouts survive unless the settings change",
    ),
    applied("cache", "new requests (the cache starts empty)"),
    applied("users_db", "new requests (reopened when the URL changes)"),
    applied("data_dir", "new requests"),
    applied("chain", "new requests (backends are rebuilt)"),
    applied("routes", "new requests"),
    applied(
        "audit",
        "the events after the reload (a file target is reopened, so logrotate needs only SIGHUP)",
    ),
    applied("route_matching", "new requests"),
    restart("log.format", |c| {
        format!("{:?}", c.log.format).to_lowercase()
    }),
    restart("log.level", |c| c.log.level.clone()),
];

/// The rule for `key`: the most specific row covering it.
fn rule_for(key: &str) -> Option<&'static KeyRule> {
    KEY_RULES
        .iter()
        .filter(|r| key == r.key || key.starts_with(&format!("{}.", r.key)))
        .max_by_key(|r| r.key.len())
}

/// The keys a reload cannot change.
pub(crate) fn restart_keys() -> impl Iterator<Item = &'static str> {
    KEY_RULES
        .iter()
        .filter(|r| matches!(r.on_reload, OnReload::Restart(_)))
        .map(|r| r.key)
}

/// The values of a config's restart keys: a process keeps those it started with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StartOnly(Vec<(&'static str, String)>);

impl StartOnly {
    /// The restart keys' values in `config`.
    pub(crate) fn of(config: &Config) -> StartOnly {
        StartOnly(
            KEY_RULES
                .iter()
                .filter_map(|r| match r.on_reload {
                    OnReload::Restart(value) => Some((r.key, value(config))),
                    OnReload::Applied(_) => None,
                })
                .collect(),
        )
    }

    /// The restart keys whose value in `new` differs from this one, with both values.
    pub(crate) fn differing<'a>(
        &'a self,
        new: &'a StartOnly,
    ) -> impl Iterator<Item = (&'static str, &'a str, &'a str)> + 'a {
        self.0
            .iter()
            .zip(&new.0)
            .filter(|((_, old), (_, new))| old != new)
            .map(|((key, old), (_, new))| (*key, old.as_str(), new.as_str()))
    }
}

/// A key that differs between two versions of a file, and how a reload treats it.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    /// The key (as in [`KEY_RULES`], or the deeper key written in the file).
    pub key: String,
    /// Whether a reload applies it.
    pub applied: bool,
}

/// The keys written differently in `old` and `new` (the files as plain YAML values): each
/// rule's key is compared, and a section whose rows are finer is compared key by key. A key
/// with no rule (impossible in a file that loads) is reported as needing a restart.
pub(crate) fn changed_keys(old: &serde_json::Value, new: &serde_json::Value) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut keys: Vec<String> = Vec::new();
    for v in [old, new] {
        if let Some(map) = v.as_object() {
            for (section, value) in map {
                let split = KEY_RULES
                    .iter()
                    .any(|r| r.key.starts_with(&format!("{section}.")));
                match value.as_object() {
                    Some(inner) if split => {
                        keys.extend(inner.keys().map(|k| format!("{section}.{k}")));
                    }
                    _ => keys.push(section.clone()),
                }
            }
        }
    }
    keys.sort();
    keys.dedup();
    for key in keys {
        let pointer = format!("/{}", key.replace('.', "/"));
        if old.pointer(&pointer) != new.pointer(&pointer) {
            let applied =
                rule_for(&key).is_some_and(|r| matches!(r.on_reload, OnReload::Applied(_)));
            changes.push(Change { key, applied });
        }
    }
    changes
}

/// The config `text` as a plain YAML value (for [`changed_keys`]); `None` when it does not
/// parse.
pub(crate) fn plain_value(text: &str) -> Option<serde_json::Value> {
    serde_saphyr::from_str::<serde_json::Value>(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_top_level_key_of_the_schema_has_a_rule() {
        let schema = serde_json::to_value(schemars::schema_for!(Config)).unwrap();
        let props = schema["properties"].as_object().unwrap();
        for key in props.keys() {
            assert!(
                KEY_RULES
                    .iter()
                    .any(|r| r.key == key || r.key.starts_with(&format!("{key}."))),
                "no reload rule for `{key}`"
            );
        }
    }

    #[test]
    fn changes_are_found_per_key_and_classified() {
        let old = plain_value("server: {listen: '127.0.0.1:1'}\nlog: {level: info}\nroutes: []\n")
            .unwrap();
        let new = plain_value(
            "server: {listen: ['127.0.0.1:1', '127.0.0.1:2']}\nlog: {level: debug}\nroutes: []\n",
        )
        .unwrap();
        let changes: Vec<(String, bool)> = changed_keys(&old, &new)
            .into_iter()
            .map(|c| (c.key, c.applied))
            .collect();
        assert_eq!(
            changes,
            [
                ("log.level".to_string(), false),
                ("server.listen".to_string(), true)
            ]
        );
    }
}
