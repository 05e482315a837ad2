//! The `sql` backend: users (and groups) read with configurable queries from SQLite, PostgreSQL or
//! MySQL/MariaDB, passwords checked against the stored hash. Its defaults read a Django project's
//! own `auth_user`, `auth_group` and `auth_user_groups` tables.
//!
//! Queries take one value (the username, the user id) through `?` placeholders: every `?` outside
//! quotes and comments is that value, bound, never spliced (for PostgreSQL they become `$1`, and
//! the value is bound with the type the server infers for `$1`: integer, boolean or text).
//! Connections are lazy: the gateway starts while the database is down, and each request that
//! cannot reach it is `Unavailable`.

use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use auth_core::password::{self, HashFormat, Verification, VerifyPolicy};
use auth_core::{
    AttributeMapping, Backend, BackendError, BuildContext, BuildError, Context, Credentials,
    Duration, Outcome, Record, Secret, User, async_trait, auth_backend,
};
use auth_storage::{Dialect, Pool, PoolError, PoolSize, SqlUrl};
use sqlx::mysql::MySqlRow;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::types::chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use sqlx::{Column, Either, Executor, Row as _, Statement, TypeInfo};
use tokio::sync::OnceCell;

/// Checks passwords against hashes stored in a SQL database (SQLite, PostgreSQL, MySQL/MariaDB;
/// the driver is chosen from the URL scheme). Pointed at a Django database it works with its
/// defaults. Passwords are checked with auth-core's `verify_stored`: a user whose hash is empty,
/// unusable (`!`, Django's `set_unusable_password`) or of a refused or unknown format is
/// `Rejected` (a rate-limited WARN names the user); a good password of an inactive user is
/// `Denied("inactive")`; an unknown user costs a password check too, then is `NotFound`;
/// several rows for one username are `Denied`
/// (ambiguous). The credential version is a digest of the stored hash, so changing the password
/// ends the user's sessions.
#[auth_backend(type = "sql", build = Self::build)]
#[derive(Debug, Clone)]
pub struct SqlBackend {
    /// `sqlite://PATH` (relative to the config file), `postgres://user@host/db`,
    /// `mysql://user@host/db` (or `mariadb://`). A password in it is hidden from `Debug`, but
    /// prefer `password`.
    pub url: DatabaseUrl,
    /// The database password (`env:NAME`, `file:PATH` or a literal), for PostgreSQL and MySQL;
    /// overrides one in `url`.
    pub password: Option<Secret>,
    /// Finds the user by username; `?` is the username. Must return the password column and,
    /// with `active_column`, that column.
    #[option(
        default = "SELECT id, username, email, first_name, last_name, password, is_active FROM auth_user WHERE username = ?"
    )]
    pub user_query: String,
    /// Restores a session's user by id (the mapping's `id`); `?` is the id.
    #[option(
        default = "SELECT id, username, email, first_name, last_name, password, is_active FROM auth_user WHERE id = ?"
    )]
    pub get_user_query: String,
    /// The user's group names (first column of each row); `?` is the user's id. `""` for none.
    #[option(
        default = "SELECT g.name FROM auth_group g JOIN auth_user_groups ug ON ug.group_id = g.id WHERE ug.user_id = ?"
    )]
    pub groups_query: String,
    /// The column holding the password hash.
    #[option(default = "password")]
    pub password_column: String,
    /// The format of the stored hashes: `auto` (detect each from its prefix), `django`,
    /// `bcrypt`, `argon2`, `sha-crypt` or `plain` (the column holds passwords in clear).
    #[option(default)]
    pub password_format: HashFormat,
    /// Boolean column; a false value (`false`, `0`, `f`, `no`, NULL) refuses the user
    /// (`Denied("inactive")`). `""` when the query has no such column.
    #[option(default = "is_active")]
    pub active_column: String,
    /// Which columns feed the user. Default: `{id: id, username: username, email: email}`.
    pub attributes: Option<AttributeMapping>,
    /// Accept Django's legacy `md5$`/`sha1$`/unsalted hashes (refused by default: they are
    /// cheap to crack; rehash them in the application instead).
    #[option(default = false)]
    pub allow_legacy_hashes: bool,
    /// Most connections held open to the database.
    #[option(default = 5)]
    pub max_connections: u32,
    /// Time to get a connection (including connecting).
    #[option(default = "5s")]
    pub connect_timeout: Duration,
    /// Time for one query.
    #[option(default = "5s")]
    pub query_timeout: Duration,
}

impl SqlBackend {
    /// Checks the options and builds the backend with a lazy pool (no connection is opened).
    pub fn build(self, ctx: &BuildContext) -> Result<Arc<dyn Backend>, BuildError> {
        Ok(Arc::new(self.into_backend(ctx)?))
    }

    fn into_backend(self, ctx: &BuildContext) -> Result<Database, BuildError> {
        if self.max_connections == 0 {
            return Err(BuildError::new("sql: `max_connections` must be at least 1"));
        }
        let pool = self.pool(ctx)?;
        let dialect = pool.dialect();
        let user_query = Query::new("user_query", &self.user_query, dialect)?;
        let get_user_query = Query::new("get_user_query", &self.get_user_query, dialect)?;
        let groups_query = match self.groups_query.trim() {
            "" => None,
            q => Some(Query::new("groups_query", q, dialect)?),
        };
        let mapping = self.attributes.clone().unwrap_or_else(|| AttributeMapping {
            id: Some("id".into()),
            username: "username".into(),
            email: Some("email".into()),
            ..AttributeMapping::default()
        });
        let policy = VerifyPolicy {
            allow_legacy: self.allow_legacy_hashes,
            ..VerifyPolicy::STRICT
        };
        Ok(Database {
            pool,
            user_query,
            get_user_query,
            groups_query,
            mapping,
            policy,
            cost_like: Mutex::new(String::new()),
            options: self,
        })
    }

    fn pool(&self, ctx: &BuildContext) -> Result<Pool, BuildError> {
        let url = SqlUrl::parse(&self.url.0)
            .map_err(|e| BuildError::new(format!("sql: bad `url`: {e}")))?
            .resolved(&ctx.base_dir);
        let size = PoolSize {
            max_connections: self.max_connections,
            acquire_timeout: self.connect_timeout.get(),
        };
        Pool::lazy(&url, self.password.as_ref().map(Secret::expose), size).map_err(|e| match e {
            PoolError::SqlitePassword => BuildError::new("sql: SQLite takes no `password`"),
            e => BuildError::new(format!("sql: bad `url`: {e}")),
        })
    }
}

/// A query with its `?` placeholders counted (and rewritten to `$1` for PostgreSQL).
struct Query {
    sql: String,
    placeholders: usize,
    /// PostgreSQL: the type the server infers for `$1`, learnt once.
    pg_param: OnceCell<PgParam>,
}

#[derive(Clone, Copy, Debug)]
enum PgParam {
    Int2,
    Int4,
    Int8,
    Bool,
    Text,
}

impl Query {
    fn new(option: &str, sql: &str, dialect: Dialect) -> Result<Query, BuildError> {
        let (rewritten, placeholders) = rewrite_placeholders(sql, dialect == Dialect::Postgres);
        if placeholders == 0 {
            return Err(BuildError::new(format!(
                "sql: `{option}` has no `?` placeholder for its value"
            )));
        }
        Ok(Query {
            sql: rewritten,
            placeholders,
            pg_param: OnceCell::new(),
        })
    }
}

/// Counts the `?` outside quotes and comments; with `numbered`, rewrites each to `$1`.
fn rewrite_placeholders(sql: &str, numbered: bool) -> (String, usize) {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut count = 0;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' | '`' => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                out.push(c);
                let mut prev = '\0';
                for d in chars.by_ref() {
                    out.push(d);
                    if prev == '*' && d == '/' {
                        break;
                    }
                    prev = d;
                }
            }
            '?' => {
                count += 1;
                out.push_str(if numbered { "$1" } else { "?" });
            }
            _ => out.push(c),
        }
    }
    (out, count)
}

/// A column value, decoded from whatever type the driver reports.
#[derive(Clone, Debug, PartialEq)]
enum Value {
    Null,
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
    Text(String),
    /// A type this backend does not read (numeric, uuid...): treated as absent.
    Unsupported,
}

impl Value {
    fn text(&self) -> Option<String> {
        match self {
            Value::Null | Value::Unsupported => None,
            Value::Int(v) => Some(v.to_string()),
            Value::UInt(v) => Some(v.to_string()),
            Value::Float(v) => Some(v.to_string()),
            Value::Bool(v) => Some(v.to_string()),
            Value::Text(v) => Some(v.clone()),
        }
    }

    fn truthy(&self) -> bool {
        match self {
            Value::Bool(b) => *b,
            Value::Int(v) => *v != 0,
            Value::UInt(v) => *v != 0,
            Value::Float(v) => *v != 0.0,
            Value::Text(s) => matches!(
                s.trim().to_ascii_lowercase().as_str(),
                "1" | "t" | "true" | "y" | "yes" | "on"
            ),
            Value::Null | Value::Unsupported => false,
        }
    }
}

/// One result row; column names are matched case-insensitively.
#[derive(Debug)]
struct Row(Vec<(String, Value)>);

impl Row {
    fn get(&self, name: &str) -> Option<&Value> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

impl Record for Row {
    fn values(&self, name: &str) -> Option<Vec<String>> {
        self.get(name).and_then(Value::text).map(|v| vec![v])
    }
}

/// Tries each type in turn; `try_get` checks type compatibility before decoding.
macro_rules! decode_value {
    ($row:expr, $i:expr; $($t:ty => $f:expr),* $(,)?) => {{
        let mut out = Value::Unsupported;
        $(
            if out == Value::Unsupported {
                if let Ok(v) = $row.try_get::<Option<$t>, _>($i) {
                    out = match v {
                        None => Value::Null,
                        Some(v) => $f(v),
                    };
                }
            }
        )*
        out
    }};
}

fn bytes_text(v: Vec<u8>) -> Value {
    Value::Text(String::from_utf8_lossy(&v).into_owned())
}

fn pg_row(row: &PgRow) -> Row {
    Row((0..row.columns().len())
        .map(|i| {
            let v = decode_value!(row, i;
                String => Value::Text,
                i64 => Value::Int,
                i32 => |v: i32| Value::Int(v.into()),
                i16 => |v: i16| Value::Int(v.into()),
                bool => Value::Bool,
                f64 => Value::Float,
                f32 => |v: f32| Value::Float(v.into()),
                DateTime<Utc> => |v: DateTime<Utc>| Value::Text(v.to_rfc3339()),
                NaiveDateTime => |v: NaiveDateTime| Value::Text(v.to_string()),
                NaiveDate => |v: NaiveDate| Value::Text(v.to_string()),
                Vec<u8> => bytes_text,
            );
            (row.columns()[i].name().to_string(), v)
        })
        .collect())
}

fn mysql_row(row: &MySqlRow) -> Row {
    Row((0..row.columns().len())
        .map(|i| {
            let v = decode_value!(row, i;
                String => Value::Text,
                i64 => Value::Int,
                u64 => Value::UInt,
                bool => Value::Bool,
                f64 => Value::Float,
                f32 => |v: f32| Value::Float(v.into()),
                DateTime<Utc> => |v: DateTime<Utc>| Value::Text(v.to_rfc3339()),
                NaiveDateTime => |v: NaiveDateTime| Value::Text(v.to_string()),
                NaiveDate => |v: NaiveDate| Value::Text(v.to_string()),
                Vec<u8> => bytes_text,
            );
            (row.columns()[i].name().to_string(), v)
        })
        .collect())
}

fn sqlite_row(row: &SqliteRow) -> Row {
    Row((0..row.columns().len())
        .map(|i| {
            let v = decode_value!(row, i;
                String => Value::Text,
                i64 => Value::Int,
                bool => Value::Bool,
                f64 => Value::Float,
                Vec<u8> => bytes_text,
            );
            (row.columns()[i].name().to_string(), v)
        })
        .collect())
}

/// A value bound to a query.
enum Bind {
    Text(String),
    I16(i16),
    I32(i32),
    I64(i64),
    Bool(bool),
}

macro_rules! run_query {
    ($pool:expr, $sql:expr, $binds:expr, $decode:expr) => {{
        let mut q = sqlx::query($sql);
        for b in $binds {
            q = match b {
                Bind::Text(v) => q.bind(v),
                Bind::I16(v) => q.bind(v),
                Bind::I32(v) => q.bind(v),
                Bind::I64(v) => q.bind(v),
                Bind::Bool(v) => q.bind(v),
            };
        }
        q.fetch_all($pool)
            .await
            .map(|rows| rows.iter().map($decode).collect::<Vec<Row>>())
    }};
}

fn db_error(query: &str, e: sqlx::Error) -> BackendError {
    BackendError::new(format!("sql {query}: {e}"))
}

/// A database URL as written in the config. `Debug` hides the password it may contain.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(pub String);

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&auth_storage::redact(&self.0), f)
    }
}

/// The built backend.
struct Database {
    options: SqlBackend,
    pool: Pool,
    user_query: Query,
    get_user_query: Query,
    groups_query: Option<Query>,
    mapping: AttributeMapping,
    policy: VerifyPolicy,
    /// One stored hash seen earlier, so an unknown user costs what a known one does.
    cost_like: Mutex<String>,
}

impl Database {
    /// Runs `query` with `value` for each placeholder. `Ok(None)` when the value cannot have the
    /// type PostgreSQL expects (e.g. a non-numeric id for an integer column): no row matches.
    async fn fetch(
        &self,
        name: &str,
        query: &Query,
        value: &str,
    ) -> Result<Vec<Row>, BackendError> {
        let work = async {
            match &self.pool {
                Pool::Postgres(pool) => {
                    let param = query
                        .pg_param
                        .get_or_try_init(|| async {
                            let stmt = pool.prepare(&query.sql).await?;
                            Ok::<_, sqlx::Error>(pg_param(stmt.parameters()))
                        })
                        .await
                        .map_err(|e| db_error(name, e))?;
                    let Some(bind) = pg_bind(*param, value) else {
                        return Ok(Vec::new());
                    };
                    run_query!(pool, &query.sql, [bind], pg_row).map_err(|e| db_error(name, e))
                }
                Pool::MySql(pool) => {
                    let binds = (0..query.placeholders).map(|_| Bind::Text(value.to_string()));
                    run_query!(pool, &query.sql, binds, mysql_row).map_err(|e| db_error(name, e))
                }
                Pool::Sqlite(pool) => {
                    let binds = (0..query.placeholders).map(|_| Bind::Text(value.to_string()));
                    run_query!(pool, &query.sql, binds, sqlite_row).map_err(|e| db_error(name, e))
                }
            }
        };
        let limit: StdDuration = self.options.query_timeout.get();
        tokio::time::timeout(limit, work)
            .await
            .map_err(|_| BackendError::new(format!("sql {name}: timed out after {limit:?}")))?
    }

    fn is_active(&self, row: &Row) -> Result<bool, BackendError> {
        let column = self.options.active_column.trim();
        if column.is_empty() {
            return Ok(true);
        }
        match row.get(column) {
            Some(v) => Ok(v.truthy()),
            None => Err(BackendError::new(format!(
                "sql: the query returns no `{column}` column (active_column); set active_column: \"\" if there is none"
            ))),
        }
    }

    /// The stored hash: `Ok(None)` when NULL.
    fn stored_hash(&self, row: &Row) -> Result<Option<String>, BackendError> {
        match row.get(&self.options.password_column) {
            Some(v) => Ok(v.text()),
            None => Err(BackendError::new(format!(
                "sql: the query returns no `{}` column (password_column)",
                self.options.password_column
            ))),
        }
    }

    async fn to_user(&self, row: &Row, hash: Option<&str>) -> Result<User, BackendError> {
        let mut user = self
            .mapping
            .map(row)
            .map_err(|e| BackendError::new(format!("sql: {e}")))?;
        if let Some(q) = &self.groups_query {
            for group in self.fetch("groups_query", q, &user.id).await? {
                if let Some(name) = group.0.first().and_then(|(_, v)| v.text())
                    && !name.is_empty()
                {
                    user.groups.insert(name);
                }
            }
        }
        user.credential_version = hash.map(password::credential_version);
        Ok(user)
    }

    async fn check(
        &self,
        entry: &str,
        username: &str,
        password: &str,
    ) -> Result<Outcome, BackendError> {
        let mut rows = self.fetch("user_query", &self.user_query, username).await?;
        if rows.len() > 1 {
            tracing::warn!(rows = rows.len(), "sql: user_query returned several rows");
            return Ok(Outcome::Denied(format!(
                "ambiguous: {} rows match this username",
                rows.len()
            )));
        }
        let row = rows.pop();
        // A NULL hash of a known user is an empty one: refused, not an unknown user.
        let hash = match &row {
            Some(row) => Some(self.stored_hash(row)?.unwrap_or_default()),
            None => None,
        };
        let cost_like = self.cost_like.lock().map(|s| s.clone()).unwrap_or_default();
        let account = password::Account {
            entry,
            username,
            stored: hash.as_deref(),
            cost_like: &cost_like,
        };
        let verified = password::verify_stored(
            account,
            password,
            self.options.password_format,
            &self.policy,
        )
        .await;
        if let (Verification::Match | Verification::Mismatch, Some(hash)) = (&verified, &hash) {
            self.remember_cost(hash);
        }
        if let Some(refusal) = verified.refusal() {
            return Ok(refusal);
        }
        let Some(row) = row else {
            return Ok(Outcome::NotFound);
        };
        if !self.is_active(&row)? {
            return Ok(Outcome::Denied("inactive".into()));
        }
        Ok(Outcome::Authenticated(
            self.to_user(&row, hash.as_deref()).await?,
        ))
    }

    fn remember_cost(&self, hash: &str) {
        if let Ok(mut like) = self.cost_like.lock()
            && like.is_empty()
        {
            *like = hash.to_string();
        }
    }
}

fn pg_param(parameters: Option<Either<&[sqlx::postgres::PgTypeInfo], usize>>) -> PgParam {
    match parameters {
        Some(Either::Left(types)) => match types.first().map(|t| t.name()) {
            Some("INT2") => PgParam::Int2,
            Some("INT4") => PgParam::Int4,
            Some("INT8") => PgParam::Int8,
            Some("BOOL") => PgParam::Bool,
            _ => PgParam::Text,
        },
        _ => PgParam::Text,
    }
}

fn pg_bind(param: PgParam, value: &str) -> Option<Bind> {
    Some(match param {
        PgParam::Int2 => Bind::I16(value.parse().ok()?),
        PgParam::Int4 => Bind::I32(value.parse().ok()?),
        PgParam::Int8 => Bind::I64(value.parse().ok()?),
        PgParam::Bool => Bind::Bool(Value::Text(value.into()).truthy()),
        PgParam::Text => Bind::Text(value.to_string()),
    })
}

#[async_trait]
impl Backend for Database {
    async fn authenticate(&self, credentials: &Credentials, context: &Context) -> Outcome {
        let Credentials::Password { username, password } = credentials else {
            return Outcome::NotFound;
        };
        match self.check(&context.entry, username, password).await {
            Ok(outcome) => outcome,
            Err(e) => Outcome::Unavailable(e),
        }
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>, BackendError> {
        if id.is_empty() {
            return Ok(None);
        }
        let rows = self
            .fetch("get_user_query", &self.get_user_query, id)
            .await?;
        let [row] = rows.as_slice() else {
            return Ok(None);
        };
        if !self.is_active(row)? {
            return Ok(None);
        }
        // A user who cannot log in (empty, unusable or refused hash) keeps no session either.
        let hash = self.stored_hash(row)?.unwrap_or_default();
        if password::identify(&hash, self.options.password_format, &self.policy).is_err() {
            return Ok(None);
        }
        let user = self.to_user(row, Some(&hash)).await?;
        Ok((user.id == id).then_some(user))
    }

    /// Prepares every configured query: the database is reachable and the queries are valid.
    async fn health(&self) -> Result<(), BackendError> {
        let limit = self.options.query_timeout.get();
        let queries = [
            Some(("user_query", &self.user_query)),
            Some(("get_user_query", &self.get_user_query)),
            self.groups_query.as_ref().map(|q| ("groups_query", q)),
        ];
        for (name, query) in queries.into_iter().flatten() {
            let sql = query.sql.as_str();
            let prepare = async {
                match &self.pool {
                    Pool::Postgres(p) => p.prepare(sql).await.map(drop),
                    Pool::MySql(p) => p.prepare(sql).await.map(drop),
                    Pool::Sqlite(p) => p.prepare(sql).await.map(drop),
                }
            };
            tokio::time::timeout(limit, prepare)
                .await
                .map_err(|_| BackendError::timeout(limit))?
                .map_err(|e| db_error(name, e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DJANGO_USER_QUERY: &str = "SELECT id, username, email, first_name, last_name, password, is_active FROM auth_user WHERE username = ?";
    const DJANGO_GET_USER_QUERY: &str = "SELECT id, username, email, first_name, last_name, password, is_active FROM auth_user WHERE id = ?";
    const DJANGO_GROUPS_QUERY: &str = "SELECT g.name FROM auth_group g JOIN auth_user_groups ug ON ug.group_id = g.id WHERE ug.user_id = ?";

    #[test]
    fn placeholders_outside_quotes_and_comments() {
        let (pg, n) = rewrite_placeholders(
            "SELECT '?', \"a?\" FROM t -- ?\nWHERE a = ? /* ? */ OR b = ?",
            true,
        );
        assert_eq!(n, 2);
        assert_eq!(
            pg,
            "SELECT '?', \"a?\" FROM t -- ?\nWHERE a = $1 /* ? */ OR b = $1"
        );
        let (my, n) = rewrite_placeholders("SELECT 'it''s' WHERE u = ?", false);
        assert_eq!((my.as_str(), n), ("SELECT 'it''s' WHERE u = ?", 1));
    }

    #[test]
    fn truthiness_of_active_values() {
        for v in [
            Value::Bool(true),
            Value::Int(1),
            Value::Text("t".into()),
            Value::UInt(1),
        ] {
            assert!(v.truthy(), "{v:?}");
        }
        for v in [
            Value::Bool(false),
            Value::Int(0),
            Value::Text("false".into()),
            Value::Text("".into()),
            Value::Null,
            Value::Unsupported,
        ] {
            assert!(!v.truthy(), "{v:?}");
        }
    }

    #[test]
    fn pg_binds_follow_the_inferred_type() {
        assert!(matches!(pg_bind(PgParam::Int4, "42"), Some(Bind::I32(42))));
        assert!(pg_bind(PgParam::Int4, "' OR '1'='1").is_none());
        assert!(pg_bind(PgParam::Int2, "70000").is_none());
        assert!(matches!(pg_bind(PgParam::Text, "x"), Some(Bind::Text(_))));
    }

    #[test]
    fn default_queries_are_the_documented_django_ones() {
        let o: SqlBackend = serde_saphyr::from_str("url: sqlite://x.db\n").unwrap();
        assert_eq!(o.user_query, DJANGO_USER_QUERY);
        assert_eq!(o.get_user_query, DJANGO_GET_USER_QUERY);
        assert_eq!(o.groups_query, DJANGO_GROUPS_QUERY);
        assert_eq!(o.active_column, "is_active");
        assert_eq!(o.password_format, HashFormat::Auto);
    }
}
