//! Open-redirect defence: `validate_next` against attack and legitimate targets.

use gateway::login::{MAX_NEXT_LEN, normalize_allowed_host, validate_next};
use url::Url;

fn public() -> Url {
    Url::parse("https://example.org").expect("valid url")
}

fn allowed() -> Vec<String> {
    vec![
        "docs.example.org".to_string(),
        "partner.example.net:8443".to_string(),
    ]
}

/// (input, expected output; `None` means refused).
const CASES: &[(&str, Option<&str>)] = &[
    // Legitimate local targets.
    ("/", Some("/")),
    ("/app", Some("/app")),
    ("/app?x=1#frag", Some("/app?x=1#frag")),
    (
        "/app/dashboard?tab=users&sort=desc",
        Some("/app/dashboard?tab=users&sort=desc"),
    ),
    ("/docs/a%2Fb", Some("/docs/a%2Fb")),
    ("/a/b/../c", Some("/a/c")),
    ("/search?q=a b", Some("/search?q=a%20b")),
    ("/café", Some("/caf%C3%A9")),
    ("/user/@me", Some("/user/@me")),
    ("/path;jsessionid=1", Some("/path;jsessionid=1")),
    // Legitimate absolute targets: our origin, allowed hosts.
    (
        "https://example.org/app?x=1",
        Some("https://example.org/app?x=1"),
    ),
    ("https://EXAMPLE.org/app", Some("https://example.org/app")),
    ("https://example.org:443/", Some("https://example.org/")),
    (
        "https://docs.example.org/guide",
        Some("https://docs.example.org/guide"),
    ),
    (
        "https://partner.example.net:8443/x",
        Some("https://partner.example.net:8443/x"),
    ),
    // Scheme-relative and slash tricks.
    ("//evil.com", None),
    ("//evil.com/path", None),
    ("///evil.com", None),
    ("/\\evil.com", None),
    ("\\/evil.com", None),
    ("\\\\evil.com", None),
    ("/app\\..\\..\\evil", None),
    ("/.//evil.com", None),
    ("/a/..//evil.com", None),
    // Encoded variants.
    ("%2f%2fevil.com", None),
    ("/%2f%2fevil.com", None),
    ("/%2F/evil.com", None),
    ("/%5cevil.com", None),
    ("/%255cevil.com", None),
    ("/%252f%252fevil.com", None),
    ("/%25252525252f%2f", None),
    // Control characters, raw and encoded.
    ("/app\ttab", None),
    ("/app\nSet-Cookie:x=1", None),
    ("/app\r\nLocation: https://evil.com", None),
    ("/app\0", None),
    ("/app%0d%0aSet-Cookie:x=1", None),
    ("/app%00", None),
    ("/app%09", None),
    ("/\u{7f}", None),
    ("/app\u{202e}gpj.exe", None),
    ("\t//evil.com", None),
    (" //evil.com", None),
    ("/ /evil.com", Some("/%20/evil.com")),
    // Other schemes.
    ("javascript:alert(1)", None),
    ("JaVaScRiPt:alert(1)", None),
    ("java\tscript:alert(1)", None),
    ("data:text/html,<script>alert(1)</script>", None),
    ("vbscript:msgbox(1)", None),
    ("ftp://example.org/", None),
    ("file:///etc/passwd", None),
    ("http:evil.com", None),
    ("https:/evil.com", None),
    ("https:///evil.com", None),
    // Userinfo.
    ("https://example.org@evil.com/", None),
    ("https://evil.com@example.org/", None),
    ("https://user:pass@example.org/", None),
    ("https://example.org%40evil.com/", None),
    // Look-alike hosts.
    ("https://evil.com/", None),
    ("https://evil-example.org/", None),
    ("https://example.org.evil.com/", None),
    ("https://notexample.org/", None),
    ("https://example.org./", None),
    ("https://sub.example.org/", None),
    ("https://docs.example.org.evil.com/", None),
    ("https://partner.example.net/x", None),
    ("https://partner.example.net:9443/x", None),
    // IDNA, punycode, full-width forms.
    ("https://ex\u{0430}mple.org/", None),
    ("https://xn--exmple-4nf.org/", None),
    (
        "https://\u{ff45}\u{ff58}\u{ff41}\u{ff4d}\u{ff50}\u{ff4c}\u{ff45}.org/",
        None,
    ),
    ("https://example\u{3002}org/", None),
    ("https://example\u{ff0e}org.evil.com/", None),
    ("\u{ff0f}\u{ff0f}evil.com", None),
    ("/\u{ff0f}evil.com", Some("/%EF%BC%8Fevil.com")),
    // Ports and downgrades.
    ("https://example.org:8443/", None),
    ("http://example.org/", None),
    ("http://docs.example.org/", None),
    // Empty and relative.
    ("", None),
    ("app", None),
    ("./app", None),
    ("?x=1", None),
    ("#frag", None),
];

#[test]
fn validate_next_table() {
    assert!(CASES.len() >= 40, "the table should stay thorough");
    let public = public();
    let allowed = allowed();
    let mut failures = Vec::new();
    for (input, expected) in CASES {
        let got = validate_next(input, &public, &allowed);
        if got.as_deref() != *expected {
            failures.push(format!("{input:?}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn accepted_targets_never_leave_our_origin_or_allow_list() {
    let public = public();
    let allowed = allowed();
    for (input, _) in CASES {
        let Some(target) = validate_next(input, &public, &allowed) else {
            continue;
        };
        if target.starts_with('/') {
            assert!(!target.starts_with("//"), "{input:?} -> {target:?}");
            let resolved = public.join(&target).expect("resolvable");
            assert_eq!(
                resolved.origin(),
                public.origin(),
                "{input:?} -> {target:?}"
            );
        } else {
            let url = Url::parse(&target).expect("absolute");
            let host = url.host_str().expect("host");
            assert!(
                host == "example.org"
                    || host == "docs.example.org"
                    || host == "partner.example.net",
                "{input:?} -> {target:?}"
            );
        }
        assert!(
            target.is_ascii(),
            "{input:?} -> {target:?} must be header-safe"
        );
    }
}

#[test]
fn over_long_next_is_refused_not_truncated() {
    let public = public();
    let at_limit = format!("/{}", "a".repeat(MAX_NEXT_LEN - 1));
    assert_eq!(
        validate_next(&at_limit, &public, &[]).as_deref(),
        Some(at_limit.as_str())
    );
    let over = format!("/{}", "a".repeat(MAX_NEXT_LEN));
    assert_eq!(validate_next(&over, &public, &[]), None);
}

#[test]
fn plain_http_origin_with_port() {
    let public = Url::parse("http://127.0.0.1:8080").expect("valid url");
    assert_eq!(
        validate_next("http://127.0.0.1:8080/app", &public, &[]).as_deref(),
        Some("http://127.0.0.1:8080/app")
    );
    assert_eq!(
        validate_next("http://127.0.0.1:8081/app", &public, &[]),
        None
    );
    assert_eq!(
        validate_next("http://localhost:8080/app", &public, &[]),
        None
    );
    assert_eq!(validate_next("/app", &public, &[]).as_deref(), Some("/app"));
}

#[test]
fn allow_list_entries_are_normalized_like_targets() {
    assert_eq!(
        normalize_allowed_host("Docs.Example.ORG").as_deref(),
        Ok("docs.example.org")
    );
    assert_eq!(
        normalize_allowed_host("bücher.example").as_deref(),
        Ok("xn--bcher-kva.example")
    );
    assert_eq!(
        normalize_allowed_host("h.example:8443").as_deref(),
        Ok("h.example:8443")
    );
    for bad in [
        "",
        "evil.com/path",
        "user@evil.com",
        "a b",
        "https://x",
        "h:99999",
    ] {
        assert!(
            normalize_allowed_host(bad).is_err(),
            "{bad:?} should be refused"
        );
    }
    // An upper-case / IDN entry matches its normalized target.
    let public = public();
    let allowed = vec!["Bücher.Example".to_string()];
    assert_eq!(
        validate_next("https://xn--bcher-kva.example/", &public, &allowed).as_deref(),
        Some("https://xn--bcher-kva.example/")
    );
}
