//! Attack class 2b: path case and Windows name equivalences, over raw TCP. Behind a
//! case-insensitive upstream (IIS, Windows file systems) `/ADMIN`, `/admin.` and `/admin%20` name
//! the resource an `/admin` rule protects. With `route_matching.case_insensitive: true` they meet
//! that rule or are refused; without it they are matched (and forwarded) as the different paths
//! they are on a case-sensitive upstream, as the README documents.

use crate::support;

use support::path_cases::{PathCase, Who, path_case_failures};
use support::{Harness, raw};

const ROUTES: &str = r#"
server:
  public_url: "http://127.0.0.1:8080"
  trusted_proxies: ["127.0.0.1/32"]
upstream:
  url: "http://{upstream}"
  connect_timeout: 1s
  timeout: 2s
session:
  secure: false
  secret: "0123456789abcdef0123456789abcdef-test"
routes:
  - match: { path: /static/ }
    access: public
  - match: { path: /admin }
    access: { groups: [admins] }
  - match: { path: /internal/ }
    access: deny
  - match: { path: / }
    access: authenticated
"#;

fn config(case_insensitive: bool) -> String {
    format!("{ROUTES}route_matching:\n  case_insensitive: {case_insensitive}\n")
}

type Case = PathCase;

/// With the option: every spelling of `/admin` meets the `/admin` rule (403 for alice, 401
/// anonymous) or is refused (400); the path is forwarded as sent when allowed.
const FOLDED: &[Case] = &[
    ("/ADMIN", Who::Anonymous, 401, None),
    ("/ADMIN", Who::Alice, 403, None),
    ("/Admin/x", Who::Alice, 403, None),
    ("/aDmIn/", Who::Alice, 403, None),
    ("/%41dmin", Who::Alice, 403, None),
    ("/%41DMIN/x", Who::Anonymous, 401, None),
    ("/INTERNAL/x", Who::Bob, 403, None),
    ("/Internal/x", Who::Alice, 403, None),
    // Windows strips trailing dots and spaces: refused, never matched as another name
    ("/admin.", Who::Alice, 400, None),
    ("/admin..", Who::Alice, 400, None),
    ("/ADMIN.", Who::Anonymous, 400, None),
    ("/admin%2e", Who::Alice, 400, None),
    ("/admin%20", Who::Alice, 400, None),
    ("/admin%20/x", Who::Alice, 400, None),
    ("/admin.%20", Who::Alice, 400, None),
    ("/static./x", Who::Anonymous, 400, None),
    ("/internal%20/x", Who::Bob, 400, None),
    // the allowed user still reaches it, under the spelling the client sent
    ("/ADMIN", Who::Bob, 200, Some("/ADMIN")),
    ("/%41dmin/X", Who::Bob, 200, Some("/Admin/X")),
    // other rules fold too, and a dot or space inside a segment is fine
    (
        "/STATIC/app.js",
        Who::Anonymous,
        200,
        Some("/STATIC/app.js"),
    ),
    (
        "/static/a.b/c%20d",
        Who::Anonymous,
        200,
        Some("/static/a.b/c%20d"),
    ),
    ("/administrator", Who::Alice, 200, Some("/administrator")),
];

/// Without it (the default): matched case-sensitively, so these spellings are other paths,
/// under the default rule (authenticated), and are forwarded unchanged.
const SENSITIVE: &[Case] = &[
    ("/admin", Who::Alice, 403, None),
    ("/ADMIN", Who::Anonymous, 401, None),
    ("/ADMIN", Who::Alice, 200, Some("/ADMIN")),
    ("/Admin/x", Who::Alice, 200, Some("/Admin/x")),
    ("/%41dmin", Who::Alice, 200, Some("/Admin")),
    ("/admin.", Who::Alice, 200, Some("/admin.")),
    ("/admin%2e", Who::Alice, 200, Some("/admin.")),
    ("/admin%20", Who::Alice, 200, Some("/admin%20")),
    ("/STATIC/app.js", Who::Anonymous, 401, None),
];

async fn run(case_insensitive: bool, cases: &[Case]) {
    let h = Harness::start_with(&config(case_insensitive)).await;
    let failures = path_case_failures(&h, cases).await;
    assert!(
        failures.is_empty(),
        "case_insensitive={case_insensitive}: {} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn case_insensitive_matching_refuses_or_challenges_every_spelling() {
    run(true, FOLDED).await;
}

#[tokio::test]
async fn default_matching_is_case_sensitive_and_forwards_unchanged() {
    run(false, SENSITIVE).await;
}

/// Forward-auth asks about the original URI: the same folding and refusals apply there (a
/// malformed original URI gets a non-2xx answer, whoever asks).
#[tokio::test]
async fn forward_auth_check_folds_the_original_uri() {
    let h = Harness::start_with(&config(true)).await;
    for (uri, who, allowed) in [
        ("/ADMIN/x", Who::Alice, false),
        ("/%41dmin", Who::Alice, false),
        ("/ADMIN/x", Who::Bob, true),
        ("/admin.", Who::Bob, false),
        ("/admin%20", Who::Bob, false),
        ("/Admin./x", Who::Bob, false),
        ("/other", Who::Alice, true),
    ] {
        let ex = raw::send(
            h.addr,
            &raw::get(
                "/_auth/check",
                &format!("X-Original-URI: {uri}\r\n{}", who.header()),
            ),
        )
        .await;
        let r = ex.first();
        assert_eq!(
            (200..300).contains(&r.status),
            allowed,
            "X-Original-URI: {uri} as {who:?}: {}",
            r.status
        );
        assert_eq!(r.header("x-remote-user").is_some(), allowed, "{uri}");
    }
    assert!(h.upstream.seen().is_empty(), "a check was forwarded");
}
