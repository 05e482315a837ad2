//! The local user store on a fresh table of real SQLite, PostgreSQL or MariaDB, shared by
//! tests/local.rs and tests/provision.rs. PostgreSQL and MariaDB: `TEST_POSTGRES_URL` (default
//! postgres://postgres@127.0.0.1:5432/test) and `TEST_MYSQL_URL` (default
//! mysql://root@127.0.0.1:3306/test). Unreachable servers fail the test under `CI=true` and skip
//! it otherwise.

use std::sync::atomic::{AtomicUsize, Ordering};

use auth_backends::UserStore;

#[derive(Clone, Copy, Debug)]
pub enum Db {
    Sqlite,
    Postgres,
    MySql,
}

/// A store on a fresh table, dropped with it (the SQLite file lives in `_dir`).
pub struct TestStore {
    pub store: UserStore,
    _dir: tempfile::TempDir,
}

impl Drop for TestStore {
    fn drop(&mut self) {
        let store = self.store.clone();
        // Drop the table on a runtime of its own: Drop cannot await.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let _ = rt.block_on(store.drop_table());
            }
        })
        .join();
    }
}

/// A table name no other test or run uses: `<prefix>_<pid>_<nanos>_<n>`.
fn table_name(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Opens a store on a fresh table named after `prefix`; `None` (skip) when the server is
/// unreachable outside CI. The SQLite file sits in a not-yet-existing subdirectory, so opening
/// also checks that the store creates it.
pub async fn open(db: Db, prefix: &str) -> Option<TestStore> {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = match db {
        Db::Sqlite => format!("sqlite://{}/sub/users.db", dir.path().display()),
        Db::Postgres => std::env::var("TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
        Db::MySql => std::env::var("TEST_MYSQL_URL")
            .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into()),
    };
    match UserStore::connect_with_table(&url, &table_name(prefix)).await {
        Ok(store) => Some(TestStore { store, _dir: dir }),
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{db:?} at {url} is required under CI: {e}"
            );
            eprintln!("SKIPPED: {db:?} at {url} is unreachable: {e}");
            None
        }
    }
}
