//! Provisioning: mirroring users authenticated by other chain entries into the local user store,
//! like django-auth-ldap's `ALWAYS_UPDATE_USER` and `MIRROR_GROUPS`.

use auth_core::{Provision, User};

use crate::store::{StoreError, UserStore};

/// Mirrors `user`, just authenticated by chain entry `entry`, per `mode`: `None` does nothing;
/// `Create` creates the user on first login (source `entry`, no usable local password);
/// `Update` also refreshes email, name, groups and attributes on every login. Records the
/// login time. Call it after a successful login; a failure should be logged, not deny the login.
pub async fn provision(
    store: &UserStore,
    user: &User,
    entry: &str,
    mode: Provision,
) -> Result<(), StoreError> {
    if mode == Provision::None {
        return Ok(());
    }
    if store.upsert_provisioned(user, entry, mode).await?.is_some() {
        store.record_login(&user.username).await?;
    }
    Ok(())
}
