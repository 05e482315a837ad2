//! The store.
pub struct UserStore;
pub struct StoredUser;
#[derive(Debug, thiserror::Error)]
#[error("x")]
pub struct StoreError;
