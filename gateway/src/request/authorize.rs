//! Phase 5, **authorize**: whether the identified user may reach the route.
//!
//! Contract: `public` and `authenticated` allow (identify and challenge already ran);
//! `{groups: [...]}` allows a member of any listed group, `{users: [...]}` a listed canonical
//! username (exact match); `deny` refuses everyone. A refusal is `403` and is never turned into
//! a login redirect: the user is known, asking them to log in again would not help.

use auth_core::User;

use crate::config::Access;

/// The verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Forward.
    Allow,
    /// 403.
    Forbid,
}

/// Decides for `access` and `user` (`None` only reaches here for `public` and `deny`).
pub(crate) fn authorize(access: &Access, user: Option<&User>) -> Verdict {
    let allowed = match access {
        Access::Public => true,
        Access::Deny => false,
        Access::Authenticated => user.is_some(),
        Access::Groups(groups) => user.is_some_and(|u| groups.iter().any(|g| u.in_group(g))),
        Access::Users(users) => user.is_some_and(|u| users.contains(&u.username)),
    };
    if allowed {
        Verdict::Allow
    } else {
        Verdict::Forbid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_users() {
        let alice = User::new("alice").with_groups(["staff"]);
        let g = Access::Groups(vec!["admins".into(), "staff".into()]);
        assert_eq!(authorize(&g, Some(&alice)), Verdict::Allow);
        assert_eq!(
            authorize(&Access::Groups(vec!["admins".into()]), Some(&alice)),
            Verdict::Forbid
        );
        assert_eq!(
            authorize(&Access::Users(vec!["Alice".into()]), Some(&alice)),
            Verdict::Forbid
        );
        assert_eq!(
            authorize(&Access::Users(vec!["alice".into()]), Some(&alice)),
            Verdict::Allow
        );
        assert_eq!(authorize(&Access::Deny, Some(&alice)), Verdict::Forbid);
        assert_eq!(authorize(&Access::Authenticated, None), Verdict::Forbid);
        assert_eq!(authorize(&Access::Public, None), Verdict::Allow);
    }
}
