//! A registered backend type (`e2e_table`) so configs loaded from files can name it: it serves
//! a [`TableBackend`] the test put under a name with [`share`], so the test can change users
//! while the gateway runs and reloads.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use auth_core::{Backend, BuildContext, BuildError, auth_backend};

use super::TableBackend;

static TABLES: LazyLock<Mutex<HashMap<String, TableBackend>>> = LazyLock::new(Default::default);

/// Makes `backend` available to configs as `options: { table: <name> }`.
pub fn share(name: &str, backend: &TableBackend) {
    TABLES
        .lock()
        .unwrap()
        .insert(name.to_string(), backend.clone());
}

/// Serves a user table shared by the test.
#[auth_backend(type = "e2e_table", build = Self::build, accepts = [password, bearer])]
pub struct E2eTable {
    /// Name the test shared the table under.
    table: String,
}

impl E2eTable {
    fn build(self, _ctx: &BuildContext) -> Result<Arc<dyn Backend>, BuildError> {
        let tables = TABLES.lock().unwrap();
        let backend = tables
            .get(&self.table)
            .ok_or_else(|| BuildError::new(format!("no shared table `{}`", self.table)))?;
        Ok(Arc::new(backend.clone()))
    }
}
