use std::sync::Arc;

use auth_core::{Backend, BuildError, auth_backend};

#[auth_backend(type = "ldap", build = Self::connect)]
struct Ldap {
    url: String,
}

impl Ldap {
    fn connect(self) -> Result<Arc<dyn Backend>, BuildError> {
        Err(BuildError::new(self.url))
    }
}

fn main() {}
