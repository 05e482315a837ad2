//! The Redis store, shared by replicas. One key per session (a digest of its id) holding the
//! record as JSON, with a TTL equal to the time left before the idle or absolute deadline.

use std::path::Path;

use ::redis::aio::ConnectionManager;
use auth_storage::RedisUrl;

use base64::Engine;

use super::{B64, Record, SessionError, SessionId, random_bytes, storage_key};

const PREFIX: &str = "gateway:session:";
/// The refresh lock of a session: held by the replica refreshing it at its provider.
const REFRESH_PREFIX: &str = "gateway:session-refresh:";

/// Deletes a refresh lock only if it still holds this replica's token: a replica that stopped
/// waiting for the lock and refreshed anyway must not release the lock another one took since.
const UNLOCK_IF_MINE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

pub(super) struct RedisStore {
    conn: ConnectionManager,
    /// This replica's token in the refresh locks it takes (random per store).
    owner: String,
}

fn unavailable(e: ::redis::RedisError) -> SessionError {
    SessionError::Unavailable(e.to_string())
}

impl RedisStore {
    pub(super) fn new(url: &RedisUrl, ca_file: Option<&Path>) -> Result<Self, SessionError> {
        Ok(RedisStore {
            conn: auth_storage::redis::lazy_manager(url, ca_file)
                .map_err(SessionError::Unavailable)?,
            owner: B64.encode(random_bytes::<16>()),
        })
    }

    pub(super) async fn check(&self) -> Result<(), SessionError> {
        let mut conn = self.conn.clone();
        ::redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Writes the record of `id` with a TTL up to `expires`: `new` only if absent, otherwise
    /// only if still present (never resurrects a destroyed session).
    pub(super) async fn put(
        &self,
        id: &SessionId,
        record: &Record,
        expires: u64,
        now: u64,
        new: bool,
    ) -> Result<(), SessionError> {
        let ttl = expires.saturating_sub(now).max(1);
        let data = serde_json::to_string(record)
            .map_err(|e| SessionError::Unavailable(format!("cannot encode session: {e}")))?;
        let mut conn = self.conn.clone();
        ::redis::cmd("SET")
            .arg(format!("{PREFIX}{}", storage_key(id)))
            .arg(data)
            .arg("PX")
            .arg(ttl)
            .arg(if new { "NX" } else { "XX" })
            .query_async::<Option<String>>(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// The record of `id`; `None` when absent or unreadable.
    pub(super) async fn get(&self, id: &SessionId) -> Result<Option<Record>, SessionError> {
        let mut conn = self.conn.clone();
        let data: Option<String> = ::redis::cmd("GET")
            .arg(format!("{PREFIX}{}", storage_key(id)))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(data.and_then(|d| match serde_json::from_str(&d) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(error = %e, "unreadable session in Redis; ignoring it");
                None
            }
        }))
    }

    /// Takes the refresh lock of `id` for `hold_ms`; `false` when another replica holds it.
    pub(super) async fn lock_refresh(
        &self,
        id: &SessionId,
        hold_ms: u64,
    ) -> Result<bool, SessionError> {
        let mut conn = self.conn.clone();
        let set: Option<String> = ::redis::cmd("SET")
            .arg(format!("{REFRESH_PREFIX}{}", storage_key(id)))
            .arg(&self.owner)
            .arg("PX")
            .arg(hold_ms.max(1))
            .arg("NX")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(set.is_some())
    }

    /// Releases the refresh lock of `id` (it expires on its own otherwise).
    pub(super) async fn unlock_refresh(&self, id: &SessionId) -> Result<(), SessionError> {
        let mut conn = self.conn.clone();
        ::redis::cmd("EVAL")
            .arg(UNLOCK_IF_MINE)
            .arg(1)
            .arg(format!("{REFRESH_PREFIX}{}", storage_key(id)))
            .arg(&self.owner)
            .query_async::<i64>(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    pub(super) async fn remove(&self, id: &SessionId) -> Result<(), SessionError> {
        let mut conn = self.conn.clone();
        ::redis::cmd("DEL")
            .arg(format!("{PREFIX}{}", storage_key(id)))
            .query_async::<i64>(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two replicas' stores on the Redis of the tests (`TEST_REDIS_URL`; skipped without it
    /// unless `CI=true`).
    fn replicas() -> Option<(RedisStore, RedisStore)> {
        let Ok(url) = std::env::var("TEST_REDIS_URL") else {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "TEST_REDIS_URL is required under CI"
            );
            eprintln!("SKIPPING: TEST_REDIS_URL is not set");
            return None;
        };
        let url = RedisUrl::parse(&url).expect("TEST_REDIS_URL is a redis:// URL");
        let store = || RedisStore::new(&url, None).expect("store");
        Some((store(), store()))
    }

    #[tokio::test]
    async fn a_late_release_leaves_the_lock_another_replica_took() {
        let Some((a, b)) = replicas() else { return };
        let id: SessionId = random_bytes();
        assert!(a.lock_refresh(&id, 100).await.expect("lock a"));
        assert!(!b.lock_refresh(&id, 100).await.expect("b waits"));
        // `a` held it past its time: `b` takes it, then `a` releases late.
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        assert!(b.lock_refresh(&id, 5_000).await.expect("lock b"));
        a.unlock_refresh(&id).await.expect("late release");
        assert!(
            !a.lock_refresh(&id, 100).await.expect("a again"),
            "a's late release must not free b's lock"
        );
        b.unlock_refresh(&id).await.expect("release b");
        assert!(a.lock_refresh(&id, 100).await.expect("free again"));
        a.unlock_refresh(&id).await.expect("release a");
    }
}
