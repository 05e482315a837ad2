//! sqlx pools for a [`SqlUrl`]: typed per dialect (for queries whose parameter types matter),
//! or sqlx's `Any` driver (for stores that write the same SQL everywhere).

use std::str::FromStr;
use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

use crate::url::{Dialect, SqlUrl};

/// How big a pool is and how long a caller waits for a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolSize {
    /// Most connections held open (an in-memory SQLite database always has one).
    pub max_connections: u32,
    /// Time to get a connection, including connecting.
    pub acquire_timeout: Duration,
}

/// Building a pool failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// A password was given for SQLite, which has none.
    #[error("SQLite takes no password")]
    SqlitePassword,
    /// The driver refused the URL, or (eager pools) connecting failed.
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
}

/// A lazy pool of the URL's own driver: no connection is opened until the first query.
#[derive(Clone, Debug)]

pub enum Pool {
    /// PostgreSQL.
    Postgres(PgPool),
    /// MySQL or MariaDB.
    MySql(MySqlPool),
    /// SQLite (an existing file: it is not created).
    Sqlite(SqlitePool),
}

impl Pool {
    /// A lazy pool on `url`; `password`, when given, replaces one in the URL. A SQLite file is
    /// opened, never created, and must be given without `password`.
    pub fn lazy(url: &SqlUrl, password: Option<&str>, size: PoolSize) -> Result<Pool, PoolError> {
        let driver_url = url.driver_url();
        Ok(match url.dialect() {
            Dialect::Postgres => {
                let mut opts = PgConnectOptions::from_str(&driver_url)?;
                if let Some(pw) = password {
                    opts = opts.password(pw);
                }
                Pool::Postgres(
                    PgPoolOptions::new()
                        .max_connections(size.max_connections)
                        .acquire_timeout(size.acquire_timeout)
                        .connect_lazy_with(opts),
                )
            }
            Dialect::MySql => {
                let mut opts = MySqlConnectOptions::from_str(&driver_url)?;
                if let Some(pw) = password {
                    opts = opts.password(pw);
                }
                Pool::MySql(
                    MySqlPoolOptions::new()
                        .max_connections(size.max_connections)
                        .acquire_timeout(size.acquire_timeout)
                        .connect_lazy_with(opts),
                )
            }
            Dialect::Sqlite => {
                if password.is_some() {
                    return Err(PoolError::SqlitePassword);
                }
                let opts = SqliteConnectOptions::from_str(&driver_url)?;
                Pool::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(size.max_connections)
                        .acquire_timeout(size.acquire_timeout)
                        .connect_lazy_with(opts.create_if_missing(false)),
                )
            }
        })
    }

    /// The pool's dialect.
    pub fn dialect(&self) -> Dialect {
        match self {
            Pool::Postgres(_) => Dialect::Postgres,
            Pool::MySql(_) => Dialect::MySql,
            Pool::Sqlite(_) => Dialect::Sqlite,
        }
    }
}

/// When an [`any_pool`] connects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connect {
    /// At the first query: a database that is down is not an error yet.
    Lazy,
    /// Now: the pool is returned once a connection works.
    Now,
}

/// A pool of sqlx's `Any` driver on `url`. An in-memory SQLite database keeps one connection
/// for the pool's life (each connection of one is a different database).
pub async fn any_pool(
    url: &SqlUrl,
    size: PoolSize,
    connect: Connect,
) -> Result<AnyPool, PoolError> {
    sqlx::any::install_default_drivers();
    let options = AnyConnectOptions::from_str(&url.driver_url())?;
    let mut pool = AnyPoolOptions::new()
        .max_connections(size.max_connections)
        .acquire_timeout(size.acquire_timeout);
    if url.is_memory() {
        pool = pool
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
    }
    Ok(match connect {
        Connect::Lazy => pool.connect_lazy_with(options),
        Connect::Now => pool.connect_with(options).await?,
    })
}
