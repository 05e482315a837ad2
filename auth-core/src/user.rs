use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// An authenticated user, as one backend knows them.
///
/// `id` is stable and unique within the backend that produced the user (`backend`); `username` is
/// the canonical form forwarded in `X-Remote-User`. `credential_version` is an opaque value that
/// changes when the user's password changes (a hash of the stored hash, an LDAP
/// `modifyTimestamp`...): a session recorded with another version is void. It is never forwarded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Stable identifier within `backend`; what `Backend::get_user` takes.
    pub id: String,
    /// Canonical username, forwarded upstream.
    pub username: String,
    /// Email address, if known.
    pub email: Option<String>,
    /// Human-readable name, if known.
    pub display_name: Option<String>,
    /// Group names.
    pub groups: BTreeSet<String>,
    /// Free attributes, each with one or more values.
    pub attributes: BTreeMap<String, Vec<String>>,
    /// Name of the chain entry that produced this user (filled in by the chain).
    pub backend: String,
    /// Changes when the credentials change; `None` when the backend cannot tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_version: Option<String>,
}

impl User {
    /// A user whose `id` and `username` are both `username`.
    pub fn new(username: impl Into<String>) -> Self {
        let username = username.into();
        User {
            id: username.clone(),
            username,
            ..User::default()
        }
    }

    /// Sets the email (builder style).
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// Sets the display name (builder style).
    pub fn with_display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }

    /// Adds groups (builder style).
    pub fn with_groups<I, S>(mut self, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.groups.extend(groups.into_iter().map(Into::into));
        self
    }

    /// Whether the user is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.contains(group)
    }

    /// First value of attribute `name`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .get(name)
            .and_then(|v| v.first())
            .map(String::as_str)
    }
}

/// Not public API: the credential version `#[user(credential_version)]` reads from a record
/// field: its single non-empty value, if any.
#[doc(hidden)]
pub fn credential_version(
    field: &str,
    values: Option<Vec<String>>,
) -> Result<Option<String>, crate::MappingError> {
    let mut values = values.unwrap_or_default();
    values.retain(|v| !v.is_empty());
    match values.len() {
        0 | 1 => Ok(values.pop()),
        count => Err(crate::MappingError::MultipleValues {
            attribute: field.to_string(),
            target: "credential_version",
            count,
        }),
    }
}
