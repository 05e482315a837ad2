//! The local user store (`users_db`): users managed with `authgate users`, and users mirrored
//! from other chain entries by provisioning, and their API keys (`authgate keys`). SQLite,
//! PostgreSQL or MySQL/MariaDB by URL, through sqlx's `Any` driver; the tables (`<table>` and
//! `<table>_api_keys`) are created on connect.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use auth_core::password::{self, HashError};

use crate::api_key::{self, NewKey};
use auth_core::{Provision, User};
use auth_storage::{Connect, Dialect, PoolError, PoolSize, SqlUrl, any_pool};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

/// The `source` of users created with `authgate users add` (not provisioned).
pub const LOCAL_SOURCE: &str = "local";

/// The table used by [`UserStore::connect`].
pub const DEFAULT_TABLE: &str = "gateway_users";

/// A local user store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The URL is not `sqlite://`, `postgres://` or `mysql://`, or the table name is not an
    /// identifier.
    #[error("invalid user store configuration: {0}")]
    Config(String),
    /// The database refused or failed.
    #[error("user store database error: {0}")]
    Database(#[from] sqlx::Error),
    /// `add` of a username that exists.
    #[error("user `{0}` already exists")]
    Exists(String),
    /// The username is not in the store.
    #[error("no user `{0}` in the store")]
    NoSuchUser(String),
    /// The API key id is not in the store.
    #[error("no API key `{0}` in the store")]
    NoSuchKey(String),
    /// A stored row cannot be read (bad JSON in `group_names` / `attributes`).
    #[error("user store row for `{username}` is corrupt: {reason}")]
    Corrupt {
        /// The row's username.
        username: String,
        /// What is wrong.
        reason: String,
    },
    /// Hashing the new password failed.
    #[error(transparent)]
    Hash(#[from] HashError),
}

/// One user of the store.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredUser {
    /// Store-assigned id; the local backend's `User::id`.
    pub id: i64,
    /// Unique username.
    pub username: String,
    /// Email, if known.
    pub email: Option<String>,
    /// Display name, if known.
    pub display_name: Option<String>,
    /// Argon2id (or imported) hash; `None` for provisioned users, who cannot log in locally.
    pub password_hash: Option<String>,
    /// Disabled users cannot log in and their sessions end.
    pub disabled: bool,
    /// [`LOCAL_SOURCE`] or the chain entry that provisioned the user.
    pub source: String,
    /// Group names.
    pub groups: BTreeSet<String>,
    /// Free attributes.
    pub attributes: BTreeMap<String, Vec<String>>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
    /// Unix seconds of the last successful login, if any.
    pub last_login_at: Option<i64>,
}

impl fmt::Debug for StoredUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredUser")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("email", &self.email)
            .field("display_name", &self.display_name)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "<redacted>"),
            )
            .field("disabled", &self.disabled)
            .field("source", &self.source)
            .field("groups", &self.groups)
            .field("attributes", &self.attributes)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .field("last_login_at", &self.last_login_at)
            .finish()
    }
}

impl StoredUser {
    /// The user as the chain sees them: `id` is the store id, `credential_version` derives from
    /// the password hash (none without one).
    pub fn to_user(&self) -> User {
        User {
            id: self.id.to_string(),
            username: self.username.clone(),
            email: self.email.clone(),
            display_name: self.display_name.clone(),
            groups: self.groups.clone(),
            attributes: self.attributes.clone(),
            backend: String::new(),
            credential_version: self
                .password_hash
                .as_deref()
                .map(password::credential_version),
        }
    }
}

/// One API key of the store, as `authgate keys list` shows it (never the secret or its hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredApiKey {
    /// The key's id (the `<id>` of `ag_<id>_<secret>`): not secret.
    pub id: String,
    /// The store id of the key's user.
    pub user_id: i64,
    /// The key's user (empty when the user is gone).
    pub username: String,
    /// A label given at creation (`--name ci`).
    pub name: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds after which the key is refused; `None`: never expires.
    pub expires_at: Option<i64>,
    /// Unix seconds of a recent successful use (recorded at most once a minute).
    pub last_used_at: Option<i64>,
    /// Unix seconds of the revocation, if revoked.
    pub revoked_at: Option<i64>,
}

/// What the store says about a presented API key.
#[derive(Debug)]
#[non_exhaustive]
pub enum KeyCheck {
    /// Not a key of this store (not `ag_<id>_<secret>`, or no such id).
    NotFound,
    /// The id exists but the secret is wrong.
    Wrong,
    /// The key was revoked.
    Revoked,
    /// The key expired.
    Expired,
    /// The key's user no longer exists.
    UserGone,
    /// A valid key of `user` (who may be disabled: the caller decides).
    Valid {
        /// The key's user.
        user: Box<StoredUser>,
        /// The key.
        key: StoredApiKey,
    },
}

/// How often, at most, a key's `last_used_at` is written.
const LAST_USED_EVERY_SECS: i64 = 60;

const KEY_COLUMNS: &str =
    "id, user_id, name, salt, secret_hash, created_at, expires_at, last_used_at, revoked_at";

/// The local user store. Cheap to clone (a connection pool); share one per process.
#[derive(Clone)]
pub struct UserStore {
    pool: AnyPool,
    kind: Dialect,
    table: String,
}

impl fmt::Debug for UserStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserStore")
            .field("kind", &self.kind)
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn valid_table(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 60
}

const COLUMNS: &str = "id, username, email, display_name, password_hash, disabled, source, \
                       group_names, attributes, created_at, updated_at, last_login_at";

impl UserStore {
    /// Connects to `url` (`sqlite://PATH` — the file and its directory are created when
    /// missing —, `sqlite::memory:`, `postgres://...`, `mysql://...`) and creates the users
    /// table (`gateway_users`) if needed. A relative SQLite path is relative to the process's
    /// working directory: resolve it against the config file's directory first.
    pub async fn connect(url: &str) -> Result<UserStore, StoreError> {
        UserStore::connect_with_table(url, DEFAULT_TABLE).await
    }

    /// [`UserStore::connect`] with another table name (an SQL identifier), e.g. to keep tests or
    /// several gateways apart in one database.
    pub async fn connect_with_table(url: &str, table: &str) -> Result<UserStore, StoreError> {
        if !valid_table(table) {
            return Err(StoreError::Config(format!(
                "table name `{table}` is not a plain SQL identifier"
            )));
        }
        let url = SqlUrl::parse(url)
            .map_err(|e| StoreError::Config(format!("users_db: {e}")))?
            .creating()
            .map_err(|e| StoreError::Config(format!("the user store: {e}")))?;
        let kind = url.dialect();
        let size = PoolSize {
            max_connections: 10,
            acquire_timeout: std::time::Duration::from_secs(10),
        };
        let pool = any_pool(&url, size, Connect::Now)
            .await
            .map_err(|e| match e {
                PoolError::Sqlx(e) => StoreError::Database(e),
                e => StoreError::Config(e.to_string()),
            })?;
        let store = UserStore {
            pool,
            kind,
            table: table.to_string(),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let t = &self.table;
        let ddl = match self.kind {
            Dialect::Sqlite => format!(
                "CREATE TABLE IF NOT EXISTS {t} (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    username TEXT NOT NULL UNIQUE,
                    email TEXT, display_name TEXT, password_hash TEXT,
                    disabled BIGINT NOT NULL DEFAULT 0,
                    source TEXT NOT NULL DEFAULT 'local',
                    group_names TEXT NOT NULL DEFAULT '[]',
                    attributes TEXT NOT NULL DEFAULT '{{}}',
                    created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, last_login_at BIGINT)"
            ),
            Dialect::Postgres => format!(
                "CREATE TABLE IF NOT EXISTS {t} (
                    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                    username TEXT NOT NULL UNIQUE,
                    email TEXT, display_name TEXT, password_hash TEXT,
                    disabled BIGINT NOT NULL DEFAULT 0,
                    source TEXT NOT NULL DEFAULT 'local',
                    group_names TEXT NOT NULL DEFAULT '[]',
                    attributes TEXT NOT NULL DEFAULT '{{}}',
                    created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, last_login_at BIGINT)"
            ),
            Dialect::MySql => format!(
                "CREATE TABLE IF NOT EXISTS {t} (
                    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
                    username VARCHAR(255) NOT NULL UNIQUE,
                    email TEXT, display_name TEXT, password_hash TEXT,
                    disabled BIGINT NOT NULL DEFAULT 0,
                    source VARCHAR(255) NOT NULL DEFAULT 'local',
                    group_names TEXT NOT NULL,
                    attributes TEXT NOT NULL,
                    created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, last_login_at BIGINT
                ) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
            ),
        };
        sqlx::query(&ddl).execute(&self.pool).await?;
        // The id is the primary key: a presented key is one indexed lookup.
        let keys = match self.kind {
            Dialect::Sqlite | Dialect::Postgres => format!(
                "CREATE TABLE IF NOT EXISTS {t}_api_keys (
                    id TEXT NOT NULL PRIMARY KEY,
                    user_id BIGINT NOT NULL,
                    name TEXT, salt TEXT NOT NULL, secret_hash TEXT NOT NULL,
                    created_at BIGINT NOT NULL, expires_at BIGINT, last_used_at BIGINT,
                    revoked_at BIGINT)"
            ),
            Dialect::MySql => format!(
                "CREATE TABLE IF NOT EXISTS {t}_api_keys (
                    id VARCHAR(64) NOT NULL PRIMARY KEY,
                    user_id BIGINT NOT NULL,
                    name TEXT, salt TEXT NOT NULL, secret_hash TEXT NOT NULL,
                    created_at BIGINT NOT NULL, expires_at BIGINT, last_used_at BIGINT,
                    revoked_at BIGINT
                ) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
            ),
        };
        sqlx::query(&keys).execute(&self.pool).await?;
        Ok(())
    }

    /// `?` placeholders in PostgreSQL's `$n` spelling where needed.
    fn sql(&self, query: &str) -> String {
        let query = query.replace("{t}", &self.table);
        if self.kind != Dialect::Postgres {
            return query;
        }
        let mut out = String::with_capacity(query.len() + 8);
        let mut n = 0;
        for c in query.chars() {
            if c == '?' {
                n += 1;
                out.push_str(&format!("${n}"));
            } else {
                out.push(c);
            }
        }
        out
    }

    fn row(row: &AnyRow) -> Result<StoredUser, StoreError> {
        let username = text(row, "username")?.unwrap_or_default();
        let corrupt = |reason: String| StoreError::Corrupt {
            username: username.clone(),
            reason,
        };
        let groups = text(row, "group_names")?.unwrap_or_default();
        let attributes = text(row, "attributes")?.unwrap_or_default();
        Ok(StoredUser {
            id: row.try_get("id")?,
            email: text(row, "email")?,
            display_name: text(row, "display_name")?,
            password_hash: text(row, "password_hash")?,
            disabled: row.try_get::<i64, _>("disabled")? != 0,
            source: text(row, "source")?.unwrap_or_default(),
            groups: serde_json::from_str(&groups)
                .map_err(|e| corrupt(format!("group_names: {e}")))?,
            attributes: serde_json::from_str(&attributes)
                .map_err(|e| corrupt(format!("attributes: {e}")))?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            last_login_at: row.try_get("last_login_at")?,
            username,
        })
    }

    /// Adds a local user (source `local`) with an Argon2id hash of `password`, or no password
    /// (cannot log in until [`UserStore::set_password`]). Fails with [`StoreError::Exists`].
    pub async fn add(
        &self,
        username: &str,
        password: Option<&str>,
        email: Option<&str>,
        name: Option<&str>,
        groups: &[String],
    ) -> Result<StoredUser, StoreError> {
        if self.get_by_username(username).await?.is_some() {
            return Err(StoreError::Exists(username.to_string()));
        }
        let hash = match password {
            Some(p) => Some(hash_blocking(p).await?),
            None => None,
        };
        let groups: BTreeSet<String> = groups.iter().cloned().collect();
        let t = now();
        let inserted = sqlx::query(&self.sql(
            "INSERT INTO {t} (username, email, display_name, password_hash, disabled, source, \
             group_names, attributes, created_at, updated_at) VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?, ?)",
        ))
        .bind(username)
        .bind(email)
        .bind(name)
        .bind(hash)
        .bind(LOCAL_SOURCE)
        .bind(json(&groups))
        .bind("{}")
        .bind(t)
        .bind(t)
        .execute(&self.pool)
        .await;
        match inserted {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(StoreError::Exists(username.to_string()));
            }
            other => other?,
        };
        self.get_by_username(username)
            .await?
            .ok_or_else(|| StoreError::NoSuchUser(username.to_string()))
    }

    /// Sets a user's password (hashed with Argon2id). Their sessions end: the credential version
    /// changes.
    pub async fn set_password(&self, username: &str, password: &str) -> Result<(), StoreError> {
        let hash = hash_blocking(password).await?;
        self.update_one(
            username,
            "UPDATE {t} SET password_hash = ?, updated_at = ? WHERE username = ?",
            Some(hash),
        )
        .await
    }

    /// Disables a user: they cannot log in and their sessions end.
    pub async fn disable(&self, username: &str) -> Result<(), StoreError> {
        self.update_one(
            username,
            "UPDATE {t} SET disabled = 1, updated_at = ? WHERE username = ?",
            None,
        )
        .await
    }

    /// Enables a disabled user.
    pub async fn enable(&self, username: &str) -> Result<(), StoreError> {
        self.update_one(
            username,
            "UPDATE {t} SET disabled = 0, updated_at = ? WHERE username = ?",
            None,
        )
        .await
    }

    /// Deletes a user and their API keys; their sessions end.
    pub async fn delete(&self, username: &str) -> Result<(), StoreError> {
        if let Some(user) = self.get_by_username(username).await? {
            sqlx::query(&self.sql("DELETE FROM {t}_api_keys WHERE user_id = ?"))
                .bind(user.id)
                .execute(&self.pool)
                .await?;
        }
        let done = sqlx::query(&self.sql("DELETE FROM {t} WHERE username = ?"))
            .bind(username)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NoSuchUser(username.to_string()));
        }
        Ok(())
    }

    async fn update_one(
        &self,
        username: &str,
        statement: &str,
        first: Option<String>,
    ) -> Result<(), StoreError> {
        let sql = self.sql(statement);
        let mut query = sqlx::query(&sql);
        if let Some(value) = first {
            query = query.bind(value);
        }
        let done = query.bind(now()).bind(username).execute(&self.pool).await?;
        // MySQL counts changed rows, not matched ones; `updated_at` changes within a second only
        // when the row did.
        if done.rows_affected() == 0 && self.get_by_username(username).await?.is_none() {
            return Err(StoreError::NoSuchUser(username.to_string()));
        }
        Ok(())
    }

    /// Every user, sorted by username.
    pub async fn list(&self) -> Result<Vec<StoredUser>, StoreError> {
        let sql = self.sql(&format!("SELECT {} FROM {{t}} ORDER BY username", COLUMNS));
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(UserStore::row).collect()
    }

    /// The user named `username` (exact match).
    pub async fn get_by_username(&self, username: &str) -> Result<Option<StoredUser>, StoreError> {
        let sql = self.sql(&format!("SELECT {} FROM {{t}} WHERE username = ?", COLUMNS));
        let row = sqlx::query(&sql)
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(UserStore::row).transpose()
    }

    /// The user with store id `id`.
    pub async fn get_by_id(&self, id: i64) -> Result<Option<StoredUser>, StoreError> {
        let sql = self.sql(&format!("SELECT {} FROM {{t}} WHERE id = ?", COLUMNS));
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(UserStore::row).transpose()
    }

    /// Mirrors `user`, authenticated by chain entry `source_entry`: with `Create` or `Update` a
    /// missing user is created (source `source_entry`, no password); with `Update` an existing
    /// one gets `user`'s email, name, groups and attributes. Never sets a password; `None` does
    /// nothing. Returns the stored user, if any.
    pub async fn upsert_provisioned(
        &self,
        user: &User,
        source_entry: &str,
        mode: Provision,
    ) -> Result<Option<StoredUser>, StoreError> {
        if mode == Provision::None {
            return self.get_by_username(&user.username).await;
        }
        let t = now();
        if self.get_by_username(&user.username).await?.is_none() {
            let inserted = sqlx::query(&self.sql(
                "INSERT INTO {t} (username, email, display_name, password_hash, disabled, source, \
                 group_names, attributes, created_at, updated_at) \
                 VALUES (?, ?, ?, NULL, 0, ?, ?, ?, ?, ?)",
            ))
            .bind(&user.username)
            .bind(user.email.as_deref())
            .bind(user.display_name.as_deref())
            .bind(source_entry)
            .bind(json(&user.groups))
            .bind(json(&user.attributes))
            .bind(t)
            .bind(t)
            .execute(&self.pool)
            .await;
            match inserted {
                Ok(_) => return self.get_by_username(&user.username).await,
                // A concurrent login created it: fall through to the update.
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {}
                Err(e) => return Err(e.into()),
            }
        }
        if mode == Provision::Update {
            sqlx::query(&self.sql(
                "UPDATE {t} SET email = ?, display_name = ?, group_names = ?, attributes = ?, \
                 updated_at = ? WHERE username = ?",
            ))
            .bind(user.email.as_deref())
            .bind(user.display_name.as_deref())
            .bind(json(&user.groups))
            .bind(json(&user.attributes))
            .bind(t)
            .bind(&user.username)
            .execute(&self.pool)
            .await?;
        }
        self.get_by_username(&user.username).await
    }

    /// Records a successful login of `username` (`last_login_at`).
    pub async fn record_login(&self, username: &str) -> Result<(), StoreError> {
        sqlx::query(&self.sql("UPDATE {t} SET last_login_at = ? WHERE username = ?"))
            .bind(now())
            .bind(username)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Makes an API key for `username`, valid for `valid_for` (forever when `None`), labelled
    /// `name`. The returned [`NewKey`] is the only copy of the secret: show it once; the store
    /// keeps a salted hash.
    pub async fn add_api_key(
        &self,
        username: &str,
        name: Option<&str>,
        valid_for: Option<std::time::Duration>,
    ) -> Result<(NewKey, StoredApiKey), StoreError> {
        let user = self
            .get_by_username(username)
            .await?
            .ok_or_else(|| StoreError::NoSuchUser(username.to_string()))?;
        let key = NewKey::generate();
        let (salt, hash) = key.salted_hash();
        let created_at = now();
        let expires_at = valid_for
            .map(|d| created_at.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)));
        sqlx::query(&self.sql(&format!(
            "INSERT INTO {{t}}_api_keys ({KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL)"
        )))
        .bind(&key.id)
        .bind(user.id)
        .bind(name)
        .bind(salt)
        .bind(hash)
        .bind(created_at)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        let stored = StoredApiKey {
            id: key.id.clone(),
            user_id: user.id,
            username: user.username,
            name: name.map(str::to_string),
            created_at,
            expires_at,
            last_used_at: None,
            revoked_at: None,
        };
        Ok((key, stored))
    }

    /// The API keys (of `username` only, when given), oldest first.
    pub async fn list_api_keys(
        &self,
        username: Option<&str>,
    ) -> Result<Vec<StoredApiKey>, StoreError> {
        let columns = "k.id, k.user_id, k.name, k.created_at, k.expires_at, k.last_used_at, \
                       k.revoked_at, u.username";
        let from = "FROM {t}_api_keys k LEFT JOIN {t} u ON u.id = k.user_id";
        let rows = match username {
            Some(name) => {
                let sql = self.sql(&format!(
                    "SELECT {columns} {from} WHERE u.username = ? ORDER BY k.created_at, k.id"
                ));
                sqlx::query(&sql).bind(name).fetch_all(&self.pool).await?
            }
            None => {
                let sql = self.sql(&format!(
                    "SELECT {columns} {from} ORDER BY k.created_at, k.id"
                ));
                sqlx::query(&sql).fetch_all(&self.pool).await?
            }
        };
        rows.iter()
            .map(|row| {
                Ok(StoredApiKey {
                    id: text(row, "id")?.unwrap_or_default(),
                    user_id: row.try_get("user_id")?,
                    username: text(row, "username")?.unwrap_or_default(),
                    name: text(row, "name")?,
                    created_at: row.try_get("created_at")?,
                    expires_at: row.try_get("expires_at")?,
                    last_used_at: row.try_get("last_used_at")?,
                    revoked_at: row.try_get("revoked_at")?,
                })
            })
            .collect()
    }

    /// Revokes API key `id`: every gateway sharing the store refuses it within a second.
    /// Revoking a revoked key keeps its first revocation time.
    pub async fn revoke_api_key(&self, id: &str) -> Result<(), StoreError> {
        let found = sqlx::query(&self.sql("SELECT id FROM {t}_api_keys WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        if found.is_none() {
            return Err(StoreError::NoSuchKey(id.to_string()));
        }
        sqlx::query(
            &self.sql("UPDATE {t}_api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"),
        )
        .bind(now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Checks a presented API key: one lookup by its id, then the salted hash of its secret
    /// compared in constant time. The secret is checked before anything else is told.
    pub async fn check_api_key(&self, presented: &str) -> Result<KeyCheck, StoreError> {
        let Some((id, secret)) = api_key::parse(presented) else {
            return Ok(KeyCheck::NotFound);
        };
        let sql = self.sql(&format!(
            "SELECT {KEY_COLUMNS} FROM {{t}}_api_keys WHERE id = ?"
        ));
        let Some(row) = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(KeyCheck::NotFound);
        };
        let salt = text(&row, "salt")?.unwrap_or_default();
        let hash = text(&row, "secret_hash")?.unwrap_or_default();
        if !api_key::matches(&salt, &hash, id, secret) {
            return Ok(KeyCheck::Wrong);
        }
        let key = StoredApiKey {
            id: id.to_string(),
            user_id: row.try_get("user_id")?,
            username: String::new(),
            name: text(&row, "name")?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
            last_used_at: row.try_get("last_used_at")?,
            revoked_at: row.try_get("revoked_at")?,
        };
        let t = now();
        if key.revoked_at.is_some() {
            return Ok(KeyCheck::Revoked);
        }
        if key.expires_at.is_some_and(|e| e <= t) {
            return Ok(KeyCheck::Expired);
        }
        let Some(user) = self.get_by_id(key.user_id).await? else {
            return Ok(KeyCheck::UserGone);
        };
        if key
            .last_used_at
            .is_none_or(|used| t - used >= LAST_USED_EVERY_SECS)
        {
            let recorded =
                sqlx::query(&self.sql("UPDATE {t}_api_keys SET last_used_at = ? WHERE id = ?"))
                    .bind(t)
                    .bind(id)
                    .execute(&self.pool)
                    .await;
            if let Err(e) = recorded {
                tracing::warn!(key = id, error = %e, "could not record the API key's last use");
            }
        }
        Ok(KeyCheck::Valid {
            key: StoredApiKey {
                username: user.username.clone(),
                ..key
            },
            user: Box::new(user),
        })
    }

    /// Checks the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Drops the users and API keys tables (for tests and `authgate users` tooling;
    /// irreversible).
    pub async fn drop_table(&self) -> Result<(), StoreError> {
        sqlx::query(&self.sql("DROP TABLE IF EXISTS {t}_api_keys"))
            .execute(&self.pool)
            .await?;
        sqlx::query(&self.sql("DROP TABLE IF EXISTS {t}"))
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// A text column. MySQL reports TEXT columns as BLOB, which sqlx's `Any` decodes only as bytes.
fn text(row: &AnyRow, column: &str) -> Result<Option<String>, StoreError> {
    match row.try_get::<Option<String>, _>(column) {
        Ok(value) => Ok(value),
        Err(sqlx::Error::ColumnDecode { .. }) => {
            let bytes: Option<Vec<u8>> = row.try_get(column)?;
            bytes
                .map(|b| {
                    String::from_utf8(b).map_err(|_| StoreError::Corrupt {
                        username: String::new(),
                        reason: format!("column `{column}` is not UTF-8"),
                    })
                })
                .transpose()
        }
        Err(e) => Err(e.into()),
    }
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}

async fn hash_blocking(password: &str) -> Result<String, StoreError> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || password::hash_password(&password))
        .await
        .map_err(|e| StoreError::Hash(HashError::Internal(e.to_string())))?
        .map_err(StoreError::from)
}
