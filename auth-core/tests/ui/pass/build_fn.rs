use std::sync::Arc;

use auth_core::{
    Backend, BackendError, BuildContext, BuildError, Context, Credentials, Outcome, Registry, User,
    async_trait, auth_backend,
};

/// Options of a backend that needs runtime state.
#[auth_backend(type = "ui_pool", build = build_pool)]
struct PoolConfig {
    /// Connection URL.
    url: String,
    /// Pool size.
    #[option(default = 4)]
    size: usize,
}

/// Same, with `Self::`.
#[auth_backend(type = "ui_pool_self", build = Self::build)]
struct PoolConfigSelf {
    url: String,
}

impl PoolConfigSelf {
    fn build(self, ctx: &BuildContext) -> Result<Arc<dyn Backend>, BuildError> {
        build_pool(PoolConfig { url: self.url, size: 1 }, ctx)
    }
}

struct Pool {
    _connections: Vec<String>,
}

fn build_pool(config: PoolConfig, _: &BuildContext) -> Result<Arc<dyn Backend>, BuildError> {
    Ok(Arc::new(Pool {
        _connections: vec![config.url; config.size],
    }))
}

#[async_trait]
impl Backend for Pool {
    async fn authenticate(&self, _: &Credentials, _: &Context) -> Outcome {
        Outcome::NotFound
    }

    async fn get_user(&self, _: &str) -> Result<Option<User>, BackendError> {
        Ok(None)
    }
}

fn main() {
    let registry = Registry::from_inventory().unwrap();
    for name in ["ui_pool", "ui_pool_self"] {
        let reg = registry.get(name).unwrap();
        let mut de = <dyn erased_serde::Deserializer>::erase(serde_json::json!({"url": "x"}));
        let factory = (reg.parse)(&mut de).unwrap();
        assert!(factory.build(&BuildContext::default()).is_ok());
    }
}
