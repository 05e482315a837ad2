//! Databases for the `sql` tests, loaded with the Django fixtures of `tests/fixtures/django/`
//! (made by Django's own `create_user`, see `make.py`): a temp SQLite file, a fresh schema in
//! the real PostgreSQL and a fresh database in the real MariaDB/MySQL, each dropped on drop. And
//! a TCP proxy the tests can cut, to take a database away mid-test.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::{ConnectOptions, Connection, Executor};

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/django")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The statements of a fixture file (one per line ending in `;`, `--` comments skipped).
fn statements(name: &str) -> Vec<String> {
    fixture(name)
        .split(";\n")
        .map(|s| {
            s.lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .filter(|s| !s.trim().is_empty())
        .collect()
}

fn unique_name() -> String {
    format!("authgw_{:016x}", rand::random::<u64>())
}

pub enum Kind {
    Sqlite(tempfile::TempDir),
    Postgres { admin_url: String, schema: String },
    MySql { admin_url: String, database: String },
}

/// A database holding Django's auth tables and the fixture users; dropped on drop.
pub struct TestDb {
    pub url: String,
    pub kind: Kind,
}

const PG_USERS: &[&str] = &["postgres", "root"];
pub const PG_ADDR: &str = "127.0.0.1:5432";
pub const MYSQL_ADDR: &str = "127.0.0.1:3306";

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let path: PathBuf = dir.path().join("django.sqlite3");
        let url = format!("sqlite://{}", path.display());
        let mut conn = sqlx::sqlite::SqliteConnectOptions::from_str(&url)
            .unwrap()
            .create_if_missing(true)
            .connect()
            .await
            .unwrap();
        for s in statements("schema.sqlite.sql")
            .into_iter()
            .chain(statements("data.sql"))
        {
            conn.execute(s.as_str())
                .await
                .unwrap_or_else(|e| panic!("{s}: {e}"));
        }
        conn.close().await.unwrap();
        TestDb {
            url,
            kind: Kind::Sqlite(dir),
        }
    }

    /// A fresh schema in the real PostgreSQL, or `None` (after `service_missing`).
    pub async fn postgres() -> Option<TestDb> {
        let mut last_error = String::new();
        for user in PG_USERS {
            let admin_url = format!("postgres://{user}@{PG_ADDR}/test");
            match sqlx::PgConnection::connect(&admin_url).await {
                Ok(mut conn) => {
                    let schema = unique_name();
                    conn.execute(format!("CREATE SCHEMA {schema}").as_str())
                        .await
                        .unwrap();
                    conn.execute(format!("SET search_path TO {schema}").as_str())
                        .await
                        .unwrap();
                    for s in statements("schema.postgres.sql")
                        .into_iter()
                        .chain(statements("data.sql"))
                    {
                        conn.execute(s.as_str())
                            .await
                            .unwrap_or_else(|e| panic!("{s}: {e}"));
                    }
                    conn.close().await.unwrap();
                    return Some(TestDb {
                        url: format!("{admin_url}?options[search_path]={schema}"),
                        kind: Kind::Postgres { admin_url, schema },
                    });
                }
                Err(e) => last_error = format!("{admin_url}: {e}"),
            }
        }
        super::service_missing("PostgreSQL on 127.0.0.1:5432 (database `test`)", last_error);
        None
    }

    /// A fresh database in the real MariaDB/MySQL, or `None` (after `service_missing`).
    pub async fn mysql() -> Option<TestDb> {
        let admin_url = format!("mysql://root@{MYSQL_ADDR}/test");
        let mut conn = match sqlx::MySqlConnection::connect(&admin_url).await {
            Ok(c) => c,
            Err(e) => {
                super::service_missing("MariaDB/MySQL on 127.0.0.1:3306 (database `test`)", e);
                return None;
            }
        };
        let database = unique_name();
        conn.execute(format!("CREATE DATABASE {database} CHARACTER SET utf8mb4").as_str())
            .await
            .unwrap();
        conn.close().await.unwrap();
        let url = format!("mysql://root@{MYSQL_ADDR}/{database}");
        let mut conn = sqlx::MySqlConnection::connect(&url).await.unwrap();
        for s in statements("schema.mysql.sql")
            .into_iter()
            .chain(statements("data.sql"))
        {
            conn.execute(s.as_str())
                .await
                .unwrap_or_else(|e| panic!("{s}: {e}"));
        }
        conn.close().await.unwrap();
        Some(TestDb {
            url,
            kind: Kind::MySql {
                admin_url,
                database,
            },
        })
    }

    /// Runs one statement on this database (to change data mid-test).
    pub async fn execute(&self, sql: &str) {
        match &self.kind {
            Kind::Sqlite(_) => {
                let mut c = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                c.execute(sql).await.unwrap();
                c.close().await.unwrap();
            }
            Kind::Postgres { .. } => {
                let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
                c.execute(sql).await.unwrap();
                c.close().await.unwrap();
            }
            Kind::MySql { .. } => {
                let mut c = sqlx::MySqlConnection::connect(&self.url).await.unwrap();
                c.execute(sql).await.unwrap();
                c.close().await.unwrap();
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let drop_sql = match &self.kind {
            Kind::Sqlite(_) => return,
            Kind::Postgres { admin_url, schema } => (
                admin_url.clone(),
                format!("DROP SCHEMA {schema} CASCADE"),
                true,
            ),
            Kind::MySql {
                admin_url,
                database,
            } => (
                admin_url.clone(),
                format!("DROP DATABASE {database}"),
                false,
            ),
        };
        // Drop runs inside the test's runtime: clean up on a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let (url, sql, pg) = drop_sql;
                if pg {
                    if let Ok(mut c) = sqlx::PgConnection::connect(&url).await {
                        let _ = c.execute(sql.as_str()).await;
                    }
                } else if let Ok(mut c) = sqlx::MySqlConnection::connect(&url).await {
                    let _ = c.execute(sql.as_str()).await;
                }
            });
        })
        .join();
    }
}

/// A TCP proxy in front of a database that the test can cut (`stop`: no new connections and
/// every open one closed) and restore (`start`, same address).
pub struct Proxy {
    pub addr: SocketAddr,
    target: String,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    pub async fn new(target: &str) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut p = Proxy {
            addr,
            target: target.to_string(),
            task: None,
        };
        p.task = Some(tokio::spawn(forward(listener, p.target.clone())));
        p
    }

    pub fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    pub async fn start(&mut self) {
        self.stop();
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        };
        self.task = Some(tokio::spawn(forward(listener, self.target.clone())));
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn forward(listener: tokio::net::TcpListener, target: String) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            return;
        };
        let target = target.clone();
        connections.spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}
