//! The SQL store (sqlx, any driver): SQLite, PostgreSQL or MySQL/MariaDB. The table is created
//! when missing; expired rows are purged at most once a minute, on login. Rows are keyed by a
//! digest of the session id, so reading the table yields no usable cookie.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use auth_storage::{Connect, Dialect, PoolSize, SqlUrl, any_pool};
use sqlx::{AnyPool, Row};

use super::{Record, SessionError, SessionId, now_ms, storage_key};

const TABLE: &str = "gateway_sessions";
const PURGE_EVERY_MS: u64 = 60_000;

pub(super) struct SqlStore {
    pool: AnyPool,
    dialect: Dialect,
    schema_ready: AtomicBool,
    last_purge: AtomicU64,
}

fn unavailable(e: sqlx::Error) -> SessionError {
    SessionError::Unavailable(e.to_string())
}

impl SqlStore {
    /// Opens a lazy pool on `url` (a relative SQLite path is under `data_dir`) and creates the
    /// table if the database answers; if it does not, the first operation retries.
    pub(super) async fn new(url: &SqlUrl, data_dir: &Path) -> Result<Self, SessionError> {
        let url = url
            .resolved(data_dir)
            .creating()
            .map_err(SessionError::Unavailable)?;
        let dialect = url.dialect();
        let size = PoolSize {
            max_connections: if dialect == Dialect::Sqlite { 4 } else { 10 },
            acquire_timeout: Duration::from_secs(3),
        };
        let pool = any_pool(&url, size, Connect::Lazy).await.map_err(|e| {
            SessionError::Unavailable(format!("session store `{}`: {e}", url.redacted()))
        })?;
        let store = SqlStore {
            pool,
            dialect,
            schema_ready: AtomicBool::new(false),
            last_purge: AtomicU64::new(0),
        };
        if let Err(e) = store.ensure_schema().await {
            tracing::warn!(error = %e, "session store not reachable yet; sessions fail closed until it is");
        }
        Ok(store)
    }

    /// `sql` with `$n` placeholders rewritten for MySQL (which takes `?`, in order).
    fn q(&self, sql: &str) -> String {
        if self.dialect != Dialect::MySql {
            return sql.to_string();
        }
        let mut out = String::with_capacity(sql.len());
        let mut chars = sql.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '$' {
                while chars.peek().is_some_and(char::is_ascii_digit) {
                    chars.next();
                }
                out.push('?');
            } else {
                out.push(c);
            }
        }
        out
    }

    async fn ensure_schema(&self) -> Result<(), SessionError> {
        if self.schema_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {TABLE} (\
             id VARCHAR(64) NOT NULL PRIMARY KEY, \
             data TEXT NOT NULL, \
             expires_at BIGINT NOT NULL)"
        );
        if let Err(e) = sqlx::query(&sql).execute(&self.pool).await {
            // Replicas starting together can race on CREATE; the table may exist all the same.
            let probe = format!("SELECT 1 FROM {TABLE} WHERE 1 = 0");
            if sqlx::query(&probe).execute(&self.pool).await.is_err() {
                return Err(unavailable(e));
            }
        }
        self.schema_ready.store(true, Ordering::Release);
        Ok(())
    }

    pub(super) async fn check(&self) -> Result<(), SessionError> {
        self.ensure_schema().await?;
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Inserts (`new`) or updates the row of `id`; an update never resurrects a deleted row.
    pub(super) async fn put(
        &self,
        id: &SessionId,
        record: &Record,
        expires: u64,
        new: bool,
    ) -> Result<(), SessionError> {
        self.ensure_schema().await?;
        let data = serde_json::to_string(record)
            .map_err(|e| SessionError::Unavailable(format!("cannot encode session: {e}")))?;
        let key = storage_key(id);
        let expires = i64::try_from(expires).unwrap_or(i64::MAX);
        if new {
            let sql = self.q(&format!(
                "INSERT INTO {TABLE} (id, data, expires_at) VALUES ($1, $2, $3)"
            ));
            sqlx::query(&sql)
                .bind(key)
                .bind(data)
                .bind(expires)
                .execute(&self.pool)
                .await
                .map_err(unavailable)?;
            self.maybe_purge().await;
        } else {
            let sql = self.q(&format!(
                "UPDATE {TABLE} SET data = $1, expires_at = $2 WHERE id = $3"
            ));
            sqlx::query(&sql)
                .bind(data)
                .bind(expires)
                .bind(key)
                .execute(&self.pool)
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    /// The record of `id`; `None` when absent or unreadable (an unreadable row is deleted).
    pub(super) async fn get(&self, id: &SessionId) -> Result<Option<Record>, SessionError> {
        self.ensure_schema().await?;
        let sql = self.q(&format!("SELECT data FROM {TABLE} WHERE id = $1"));
        let row = sqlx::query(&sql)
            .bind(storage_key(id))
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        let Some(row) = row else { return Ok(None) };
        // MySQL reports TEXT to the `any` driver as a BLOB.
        let data: Vec<u8> = match row.try_get::<String, _>(0) {
            Ok(text) => text.into_bytes(),
            Err(_) => row.try_get::<Vec<u8>, _>(0).map_err(unavailable)?,
        };
        match serde_json::from_slice(&data) {
            Ok(record) => Ok(Some(record)),
            Err(e) => {
                tracing::warn!(error = %e, "unreadable session row; deleting it");
                self.remove(id).await?;
                Ok(None)
            }
        }
    }

    pub(super) async fn remove(&self, id: &SessionId) -> Result<(), SessionError> {
        self.ensure_schema().await?;
        let sql = self.q(&format!("DELETE FROM {TABLE} WHERE id = $1"));
        sqlx::query(&sql)
            .bind(storage_key(id))
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn maybe_purge(&self) {
        let now = now_ms();
        let last = self.last_purge.load(Ordering::Relaxed);
        if now.saturating_sub(last) < PURGE_EVERY_MS
            || self
                .last_purge
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let sql = self.q(&format!("DELETE FROM {TABLE} WHERE expires_at <= $1"));
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        if let Err(e) = sqlx::query(&sql).bind(now).execute(&self.pool).await {
            tracing::warn!(error = %e, "could not purge expired sessions");
        }
    }
}
