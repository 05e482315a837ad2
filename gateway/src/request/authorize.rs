//! Phase 5, **authorize**: the one access decision, made by [`decide`] for the proxy path and
//! for forward-auth's `check` alike, so the two cannot drift.
//!
//! Contract: `public` allows without asking who it is, `deny` refuses everyone before
//! identification; every other rule needs an identity first ([`Decision::Identify`]), then
//! nobody is a challenge; `authenticated` allows anyone identified, `{groups: [...]}` a member
//! of any listed group, `{users: [...]}` a listed canonical username (exact match). A refusal of
//! a known user is `403` and is never turned into a login redirect: asking them to log in again
//! would not help.

use auth_core::User;

use crate::config::Access;

/// Who is asking, as far as the request path knows.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Who<'a> {
    /// Identification has not run (it runs only when the decision asks for it).
    NotAsked,
    /// Identification ran and found nobody.
    Anonymous,
    /// Identification found this user.
    User(&'a User),
}

impl<'a> Who<'a> {
    /// What identification left in the request context.
    pub(crate) fn identified(user: Option<&'a User>) -> Who<'a> {
        user.map_or(Who::Anonymous, Who::User)
    }
}

/// The access decision for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// A `public` route: allowed without identifying anyone (no identity headers).
    Public,
    /// A `deny` route: 403 for everyone, before identification.
    Deny,
    /// The route needs to know who is asking: identify, then decide again.
    Identify,
    /// Nobody identified on a protected route: the challenge (302 to the login page, or 401).
    Challenge,
    /// The identified user is not allowed: 403.
    Forbidden,
    /// The identified user is allowed: forward, or 200 with the identity headers.
    Allow,
}

/// Where a decision is answered (it names the log and metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    /// The proxy path.
    Proxy,
    /// Forward-auth's `check` endpoint.
    Check,
}

impl Decision {
    /// The label of this decision in the access log and the metrics.
    pub(crate) fn label(self, via: Via) -> &'static str {
        match (via, self) {
            (Via::Proxy, Decision::Public) => "public",
            (Via::Proxy, Decision::Deny) => "deny",
            (Via::Proxy, Decision::Identify) => "identify",
            (Via::Proxy, Decision::Challenge) => "challenge",
            (Via::Proxy, Decision::Forbidden) => "forbidden",
            (Via::Proxy, Decision::Allow) => "allowed",
            (Via::Check, Decision::Public) => "check_public",
            (Via::Check, Decision::Deny) => "check_deny",
            (Via::Check, Decision::Identify) => "check_identify",
            (Via::Check, Decision::Challenge) => "check_challenge",
            (Via::Check, Decision::Forbidden) => "check_forbidden",
            (Via::Check, Decision::Allow) => "check_allowed",
        }
    }
}

/// Decides for the rule's `access` and `who` is asking. Call it first with [`Who::NotAsked`];
/// on [`Decision::Identify`], identify and call it again with [`Who::identified`].
pub(crate) fn decide(access: &Access, who: Who<'_>) -> Decision {
    let user = match (access, who) {
        (Access::Public, _) => return Decision::Public,
        (Access::Deny, _) => return Decision::Deny,
        (_, Who::NotAsked) => return Decision::Identify,
        (_, Who::Anonymous) => return Decision::Challenge,
        (_, Who::User(user)) => user,
    };
    let allowed = match access {
        Access::Authenticated => true,
        Access::Groups(groups) => groups.iter().any(|g| user.in_group(g)),
        Access::Users(users) => users.contains(&user.username),
        Access::Public | Access::Deny => false,
    };
    if allowed {
        Decision::Allow
    } else {
        Decision::Forbidden
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_users() {
        let alice = User::new("alice").with_groups(["staff"]);
        let who = Who::User(&alice);
        let g = Access::Groups(vec!["admins".into(), "staff".into()]);
        assert_eq!(decide(&g, who), Decision::Allow);
        assert_eq!(
            decide(&Access::Groups(vec!["admins".into()]), who),
            Decision::Forbidden
        );
        assert_eq!(
            decide(&Access::Users(vec!["Alice".into()]), who),
            Decision::Forbidden
        );
        assert_eq!(
            decide(&Access::Users(vec!["alice".into()]), who),
            Decision::Allow
        );
        assert_eq!(decide(&Access::Authenticated, who), Decision::Allow);
    }

    #[test]
    fn public_and_deny_never_identify_and_the_rest_always_do() {
        let alice = User::new("alice").with_groups(["admins"]);
        for who in [Who::NotAsked, Who::Anonymous, Who::User(&alice)] {
            assert_eq!(decide(&Access::Public, who), Decision::Public);
            assert_eq!(decide(&Access::Deny, who), Decision::Deny);
        }
        for access in [
            Access::Authenticated,
            Access::Groups(vec!["admins".into()]),
            Access::Users(vec!["alice".into()]),
        ] {
            assert_eq!(decide(&access, Who::NotAsked), Decision::Identify);
            assert_eq!(decide(&access, Who::Anonymous), Decision::Challenge);
            assert_eq!(decide(&access, Who::User(&alice)), Decision::Allow);
        }
    }
}
