use std::collections::BTreeMap;

use auth_core::{
    Backend, BackendError, Context, Credentials, Duration, Outcome, Registry, Secret, User,
    async_trait, auth_backend,
};

/// Every kind of option at once.
#[auth_backend(type = "ui_full")]
pub struct Full {
    /// Required.
    pub url: String,
    /// A secret.
    pub password: Secret,
    /// Optional secret.
    pub token: Option<Secret>,
    /// Duration with a default.
    #[option(default = "30s")]
    pub timeout: Duration,
    /// Integer default.
    #[option(default = 3)]
    pub retries: u8,
    /// Negative integer default.
    #[option(default = -1)]
    pub offset: i32,
    /// Float default.
    #[option(default = 0.5)]
    pub ratio: f64,
    /// Bool default.
    #[option(default = false)]
    pub verbose: bool,
    /// `Default::default()`.
    #[option(default)]
    pub groups: Vec<String>,
    /// Renamed.
    #[option(rename = "base-dn")]
    pub base_dn: Option<String>,
    /// A raw identifier.
    pub r#type: Option<String>,
    /// A map.
    #[option(default)]
    pub users: BTreeMap<String, Secret>,
    #[option(skip)]
    pub cache: std::sync::Mutex<Vec<String>>,
}

#[async_trait]
impl Backend for Full {
    async fn authenticate(&self, _: &Credentials, _: &Context) -> Outcome {
        Outcome::NotFound
    }

    async fn get_user(&self, _: &str) -> Result<Option<User>, BackendError> {
        Ok(None)
    }
}

/// No options at all.
#[auth_backend(type = "ui_empty")]
struct Empty {}

#[async_trait]
impl Backend for Empty {
    async fn authenticate(&self, _: &Credentials, _: &Context) -> Outcome {
        Outcome::NotFound
    }

    async fn get_user(&self, _: &str) -> Result<Option<User>, BackendError> {
        Ok(None)
    }
}

fn main() {
    let registry = Registry::from_inventory().unwrap();
    let full = registry.get("ui_full").unwrap();
    let names: Vec<_> = full.options.iter().map(|o| o.name).collect();
    assert_eq!(
        names,
        [
            "url", "password", "token", "timeout", "retries", "offset", "ratio", "verbose",
            "groups", "base-dn", "type", "users"
        ]
    );
    let f: Full = serde_saphyr::from_str("url: ldap://x\npassword: p\ntype: ad\n").unwrap();
    assert_eq!(f.timeout, Duration::from_secs(30));
    assert_eq!((f.retries, f.offset, f.ratio, f.verbose), (3, -1, 0.5, false));
    assert_eq!(f.r#type.as_deref(), Some("ad"));
    assert!(f.cache.lock().unwrap().is_empty());
    assert!(registry.get("ui_empty").unwrap().options.is_empty());
    let _: Empty = serde_saphyr::from_str("{}").unwrap();
}
