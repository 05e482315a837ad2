//! The `ldap` backend against a real OpenLDAP `slapd` started by each test.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;

use auth_backends::ldap::LdapBackend;
use auth_core::{AttributeMapping, Backend, BuildContext, Context, Credentials, Duration, Outcome};
use auth_core::{Secret, User};
use support::slapd::{self, Slapd};

fn search_options(s: &Slapd) -> LdapBackend {
    LdapBackend {
        url: s.url(),
        starttls: false,
        ca_file: None,
        bind_dn: Some(slapd::READER_DN.into()),
        bind_password: Some(Secret::new(slapd::READER_PW)),
        user_base: Some(slapd::PEOPLE.into()),
        user_filter: "(uid={username})".into(),
        user_dn: None,
        group_attribute: Some("memberOf".into()),
        group_base: None,
        group_filter: "(member={dn})".into(),
        group_name: Some("cn".into()),
        attributes: None,
        connect_timeout: Duration::from_secs(3),
        timeout: Duration::from_secs(3),
    }
}

fn direct_options(s: &Slapd) -> LdapBackend {
    LdapBackend {
        bind_dn: None,
        bind_password: None,
        user_base: None,
        user_dn: Some(format!("uid={{username}},{}", slapd::PEOPLE)),
        ..search_options(s)
    }
}

fn build(options: LdapBackend) -> Arc<dyn Backend> {
    options.build(&BuildContext::default()).expect("build")
}

async fn login(backend: &Arc<dyn Backend>, username: &str, password: &str) -> Outcome {
    backend
        .authenticate(
            &Credentials::password(username, password),
            &Context::default(),
        )
        .await
}

fn authenticated(outcome: Outcome) -> User {
    match outcome {
        Outcome::Authenticated(user) => user,
        other => panic!("expected Authenticated, got {other:?}"),
    }
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn search_then_bind_maps_the_entry_and_memberof_groups() {
    let Some(s) = Slapd::start_or_skip().await else {
        return;
    };
    let backend = build(search_options(&s));

    let alice = authenticated(login(&backend, "alice", "alice-ldap-pw").await);
    assert_eq!(alice.username, "alice");
    assert_eq!(alice.id, "alice");
    assert_eq!(alice.email.as_deref(), Some("alice@example.org"));
    assert_eq!(alice.display_name.as_deref(), Some("Alice Liddell"));
    assert_eq!(alice.groups, set(&["admins", "staff"]));
    assert!(
        alice.credential_version.is_some(),
        "modifyTimestamp expected"
    );

    // Case-insensitive match in the directory; the canonical username comes from the entry.
    let alice = authenticated(login(&backend, "ALICE", "alice-ldap-pw").await);
    assert_eq!(alice.username, "alice");

    assert!(matches!(
        login(&backend, "alice", "wrong").await,
        Outcome::Rejected
    ));
    assert!(matches!(
        login(&backend, "alice", "").await,
        Outcome::Rejected
    ));
    assert!(matches!(
        login(&backend, "nobody", "x").await,
        Outcome::NotFound
    ));
    let bob = authenticated(login(&backend, "bob", "bob-ldap-pw").await);
    assert!(bob.groups.is_empty());
}

#[tokio::test]
async fn filter_injection_finds_nobody() {
    let Some(s) = Slapd::start_or_skip().await else {
        return;
    };
    let backend = build(search_options(&s));
    for username in [
        "*",
        ")(uid=*",
        "alice)(|(uid=*",
        "*)(uid=*))(|(uid=*",
        "al*",
        "alice\0",
    ] {
        let out = login(&backend, username, "alice-ldap-pw").await;
        assert!(matches!(out, Outcome::NotFound), "{username:?}: {out:?}");
    }
    // The same attempts against get_user.
    for id in ["*", ")(uid=*", "al*"] {
        assert_eq!(backend.get_user(id).await.unwrap(), None, "{id:?}");
    }
}

#[tokio::test]
async fn usernames_with_filter_and_dn_special_characters() {
    let Some(s) = Slapd::start_or_skip().await else {
        return;
    };
    for (mode, backend) in [
        ("search", build(search_options(&s))),
        ("direct", build(direct_options(&s))),
    ] {
        let star = authenticated(login(&backend, "a*b(c)", "star-pw").await);
        assert_eq!(star.username, "a*b(c)", "{mode}");
        assert_eq!(star.groups, set(&["weird"]), "{mode}");
        let comma = authenticated(login(&backend, "x,y=z", "comma-pw").await);
        assert_eq!(comma.username, "x,y=z", "{mode}");
        assert!(matches!(
            login(&backend, "a*b(c)", "comma-pw").await,
            Outcome::Rejected
        ));
        let jose = authenticated(login(&backend, "jos\u{e9}", "p\u{e4}ss-jos\u{e9}").await);
        assert_eq!(jose.username, "jos\u{e9}", "{mode}");
        assert_eq!(
            jose.display_name.as_deref(),
            Some("Jos\u{e9} N\u{fa}\u{f1}ez")
        );
        assert_eq!(jose.groups, set(&["staff"]), "{mode}");
    }
}

#[tokio::test]
async fn direct_bind() {
    let Some(s) = Slapd::start_or_skip().await else {
        return;
    };
    let backend = build(direct_options(&s));
    let alice = authenticated(login(&backend, "alice", "alice-ldap-pw").await);
    assert_eq!(alice.groups, set(&["admins", "staff"]));
    assert_eq!(alice.email.as_deref(), Some("alice@example.org"));
    assert!(matches!(
        login(&backend, "alice", "nope").await,
        Outcome::Rejected
    ));
    // The directory answers invalidCredentials for an unknown DN too.
    assert!(matches!(
        login(&backend, "nobody", "x").await,
        Outcome::Rejected
    ));
    assert!(matches!(
        login(&backend, "alice", "").await,
        Outcome::Rejected
    ));
    // A username that tries to be a DN stays one RDN value.
    let out = login(
        &backend,
        "alice,ou=people,dc=example,dc=org",
        "alice-ldap-pw",
    )
    .await;
    assert!(matches!(out, Outcome::Rejected), "{out:?}");
    let out = login(&backend, "*", "alice-ldap-pw").await;
    assert!(matches!(out, Outcome::Rejected), "{out:?}");

    // get_user reads the entry at the templated DN, as the service account when there is one
    // (this directory shows nothing to anonymous clients).
    let with_reader = build(LdapBackend {
        bind_dn: Some(slapd::READER_DN.into()),
        bind_password: Some(Secret::new(slapd::READER_PW)),
        ..direct_options(&s)
    });
    let restored = with_reader.get_user("alice").await.unwrap().expect("alice");
    assert_eq!(restored.groups, alice.groups);
    assert_eq!(restored.email, alice.email);
    assert_eq!(
        with_reader
            .get_user("x,y=z")
            .await
            .unwrap()
            .unwrap()
            .username,
        "x,y=z"
    );
    assert_eq!(with_reader.get_user("nobody").await.unwrap(), None);
    assert_eq!(with_reader.get_user("alice,ou=people").await.unwrap(), None);
    assert_eq!(
        backend.get_user("alice").await.unwrap(),
        None,
        "anonymous sees nothing"
    );
}

#[tokio::test]
async fn group_search_instead_of_memberof() {
    let Some(s) = Slapd::start_or_skip().await else {
        return;
    };
    let backend = build(LdapBackend {
        group_attribute: None,
        group_base: Some(slapd::GROUPS.into()),
        group_filter: "(&(objectClass=groupOfNames)(member={dn}))".into(),
        ..search_options(&s)
    });
    let alice = authenticated(login(&backend, "alice", "alice-ldap-pw").await);
    assert_eq!(alice.groups, set(&["admins", "staff"]));
    // A DN with escaped characters in the {dn} of the group filter.
    let star = authenticated(login(&backend, "a*b(c)", "star-pw").await);
    assert_eq!(star.groups, set(&["weird"]));

    // Without group_name, groups are whole DNs.
    let backend = build(LdapBackend {
        group_attribute: None,
        group_name: None,
        group_base: Some(slapd::GROUPS.into()),
        ..search_options(&s)
    });
    let alice = authenticated(login(&backend, "alice", "alice-ldap-pw").await);
    assert_eq!(
        alice.groups,
        set(&[
            "cn=admins,ou=groups,dc=example,dc=org",
            "cn=staff,ou=groups,dc=example,dc=org"
        ])
    );
}

#[tokio::test]
async fn posix_group_search_by_username() {
    let Some(s) = Slapd::start_or_skip().await else {
        return;
    };
    let backend = build(LdapBackend {
        group_attribute: None,
        group_base: Some(slapd::GROUPS.into()),
        group_filter: "(&(objectClass=posixGroup)(memberUid={username}))".into(),
        ..search_options(&s)
    });
    // memberUid matches case-exactly: the entry's own spelling is used, not the typed one.
    let alice = authenticated(login(&backend, "ALICE", "alice-ldap-pw").await);
    assert_eq!(alice.groups, set(&["devs"]));
    let star = authenticated(login(&backend, "a*b(c)", "star-pw").await);
    assert_eq!(star.groups, set(&["devs"]));
    let bob = authenticated(login(&backend, "bob", "bob-ldap-pw").await);
    assert!(bob.groups.is_empty(), "{:?}", bob.groups);
    assert_eq!(
        backend.get_user("alice").await.unwrap().unwrap().groups,
        set(&["devs"])
    );
}

#[tokio::test]
async fn several_entries_for_one_username_is_denied() {
    let Some(s) = Slapd::start_or_skip().await else {
        return;
    };
    let backend = build(LdapBackend {
        user_base: Some(slapd::BASE.into()),
        ..search_options(&s)
    });
    for pw in ["twin-pw-1", "twin-pw-2"] {
        let out = login(&backend, "twin", pw).await;
        assert!(matches!(out, Outcome::Denied(_)), "{out:?}");
    }
}

/// Adds `values` to attribute `attr` of `uid`'s entry, as the directory's admin.
async fn add_values(s: &Slapd, uid: &str, attr: &str, values: &[&str]) {
    let mut admin = s.admin().await.expect("admin bind");
    let dn = format!("uid={uid},{}", slapd::PEOPLE);
    let values: std::collections::HashSet<&str> = values.iter().copied().collect();
    admin
        .modify(&dn, vec![ldap3::Mod::Add(attr, values)])
        .await
        .and_then(|r| r.success())
        .unwrap_or_else(|e| panic!("add {attr} to {dn}: {e}"));
    let _ = admin.unbind().await;
}

#[tokio::test]
async fn a_second_mail_takes_the_first_unless_strict() {
    let Some(s) = Slapd::start_or_skip().await else {
        return;
    };
    add_values(&s, "bob", "mail", &["robert@example.org"]).await;
    // `cn` stands for the display name here: inetOrgPerson's displayName is single-valued.
    add_values(&s, "bob", "cn", &["Robert Builder"]).await;
    let mapping = AttributeMapping {
        username: "uid".into(),
        email: Some("mail".into()),
        name: Some("cn".into()),
        ..AttributeMapping::default()
    };
    let lenient = build(LdapBackend {
        attributes: Some(mapping.clone()),
        ..search_options(&s)
    });
    let bob = authenticated(login(&lenient, "bob", "bob-ldap-pw").await);
    assert_eq!(bob.email.as_deref(), Some("bob@example.org"));
    assert_eq!(bob.display_name.as_deref(), Some("Bob Builder"));
    let restored = lenient.get_user("bob").await.unwrap().expect("bob");
    assert_eq!(restored.email, bob.email);
    // Others are untouched.
    authenticated(login(&lenient, "alice", "alice-ldap-pw").await);

    // strict: true: several values are an error, for that user (Unavailable, as a bad entry).
    let strict = build(LdapBackend {
        attributes: Some(AttributeMapping {
            strict: true,
            ..mapping
        }),
        ..search_options(&s)
    });
    let out = login(&strict, "bob", "bob-ldap-pw").await;
    assert!(
        matches!(&out, Outcome::Unavailable(e) if e.to_string().contains("mail")),
        "{out:?}"
    );
    authenticated(login(&strict, "alice", "alice-ldap-pw").await);
}

#[tokio::test]
async fn a_second_uid_is_never_guessed() {
    let Some(s) = Slapd::start_or_skip().await else {
        return;
    };
    add_values(&s, "bob", "uid", &["robert"]).await;
    let backend = build(search_options(&s));
    for name in ["bob", "robert"] {
        let out = login(&backend, name, "bob-ldap-pw").await;
        assert!(
            matches!(&out, Outcome::Unavailable(e) if e.to_string().contains("uid")),
            "{name}: {out:?}"
        );
    }
}

#[tokio::test]
async fn custom_attribute_mapping() {
    let Some(s) = Slapd::start_or_skip().await else {
        return;
    };
    let backend = build(LdapBackend {
        attributes: Some(AttributeMapping {
            id: Some("dn".into()),
            username: "uid".into(),
            email: Some("mail".into()),
            name: Some("cn".into()),
            groups: Some("memberOf".into()),
            extra: [("surname".to_string(), "sn".to_string())].into(),
            ..AttributeMapping::default()
        }),
        group_attribute: None,
        ..search_options(&s)
    });
    let alice = authenticated(login(&backend, "alice", "alice-ldap-pw").await);
    assert_eq!(alice.id, "uid=alice,ou=people,dc=example,dc=org");
    assert_eq!(alice.attribute("surname"), Some("Liddell"));
    assert_eq!(alice.groups, set(&["admins", "staff"]));
    let again = backend
        .get_user(&alice.id)
        .await
        .unwrap()
        .expect("get_user by DN");
    assert_eq!(again.username, "alice");
    assert_eq!(again.groups, alice.groups);
    let gone = "uid=nobody,ou=people,dc=example,dc=org";
    assert_eq!(backend.get_user(gone).await.unwrap(), None);
    assert_eq!(backend.get_user("not a dn").await.unwrap(), None);
}

#[tokio::test]
async fn get_user_and_credential_version() {
    let Some(s) = Slapd::start_or_skip().await else {
        return;
    };
    let backend = build(search_options(&s));
    let bob = authenticated(login(&backend, "bob", "bob-ldap-pw").await);
    let restored = backend.get_user(&bob.id).await.unwrap().expect("bob");
    assert_eq!(restored, bob);
    assert_eq!(backend.get_user("nobody").await.unwrap(), None);
    assert_eq!(backend.get_user("").await.unwrap(), None);

    // modifyTimestamp has a one-second resolution.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    s.set_password("bob", "bob-new-pw").await.unwrap();
    let after = backend.get_user(&bob.id).await.unwrap().expect("bob");
    assert_ne!(after.credential_version, bob.credential_version);
    assert!(matches!(
        login(&backend, "bob", "bob-ldap-pw").await,
        Outcome::Rejected
    ));
    let bob2 = authenticated(login(&backend, "bob", "bob-new-pw").await);
    assert_eq!(bob2.credential_version, after.credential_version);
}

#[tokio::test]
async fn ldaps_and_starttls_with_a_ca_file() {
    let Some(s) = Slapd::start_or_skip().await else {
        return;
    };
    let backend = build(LdapBackend {
        url: s.tls_url(),
        ca_file: Some(s.ca_file()),
        ..search_options(&s)
    });
    authenticated(login(&backend, "alice", "alice-ldap-pw").await);

    let backend = build(LdapBackend {
        starttls: true,
        ca_file: Some(s.ca_file()),
        ..search_options(&s)
    });
    authenticated(login(&backend, "alice", "alice-ldap-pw").await);

    // Without our CA the certificate is not trusted: the backend cannot answer.
    let backend = build(LdapBackend {
        url: s.tls_url(),
        ..search_options(&s)
    });
    let out = login(&backend, "alice", "alice-ldap-pw").await;
    assert!(matches!(out, Outcome::Unavailable(_)), "{out:?}");
}

#[tokio::test]
async fn wrong_service_password_is_unavailable_not_rejected() {
    let Some(s) = Slapd::start_or_skip().await else {
        return;
    };
    let backend = build(LdapBackend {
        bind_password: Some(Secret::new("not-the-reader-password")),
        ..search_options(&s)
    });
    let out = login(&backend, "alice", "alice-ldap-pw").await;
    assert!(matches!(out, Outcome::Unavailable(_)), "{out:?}");
    assert!(backend.health().await.is_err());
}

#[tokio::test]
async fn directory_down_is_unavailable_and_recovers() {
    let Some(mut s) = Slapd::start_or_skip().await else {
        return;
    };
    let backend = build(search_options(&s));
    authenticated(login(&backend, "alice", "alice-ldap-pw").await);
    assert!(backend.health().await.is_ok());

    s.stop();
    let out = login(&backend, "alice", "alice-ldap-pw").await;
    match out {
        Outcome::Unavailable(e) => assert!(!e.to_string().contains("alice-ldap-pw")),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(backend.get_user("alice").await.is_err());
    assert!(backend.health().await.is_err());

    s.restart().await.unwrap();
    authenticated(login(&backend, "alice", "alice-ldap-pw").await);
    assert!(backend.get_user("alice").await.unwrap().is_some());
}

/// The options exactly as `gateway.reference.yaml` writes them (the secret from a file).
#[tokio::test]
async fn reference_yaml_options() {
    let Some(s) = Slapd::start_or_skip().await else {
        return;
    };
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), format!("{}\n", slapd::READER_PW)).unwrap();
    let yaml = format!(
        r#"
url: {url}
starttls: false
bind_dn: {reader}
bind_password: file:{secret}
user_base: {people}
user_filter: "(uid={{username}})"             # {{username}} is escaped per RFC 4515
group_attribute: memberOf
attributes: {{ username: uid, email: mail, name: displayName, groups: memberOf }}
group_name: cn
"#,
        url = s.url(),
        reader = slapd::READER_DN,
        secret = secret.path().display(),
        people = slapd::PEOPLE,
    );
    let options: LdapBackend = serde_saphyr::from_str(&yaml).unwrap();
    assert!(!format!("{options:?}").contains(slapd::READER_PW));
    let backend = build(options);
    let alice = authenticated(login(&backend, "alice", "alice-ldap-pw").await);
    assert_eq!(alice.groups, set(&["admins", "staff"]));
    assert_eq!(alice.display_name.as_deref(), Some("Alice Liddell"));

    // Defaults: user_filter (uid={username}), 5s timeouts, anonymous search (which this
    // directory's ACLs answer with nothing).
    let minimal: LdapBackend =
        serde_saphyr::from_str(&format!("url: {}\nuser_base: {}\n", s.url(), slapd::PEOPLE))
            .unwrap();
    assert_eq!(minimal.user_filter, "(uid={username})");
    assert_eq!(minimal.group_filter, "(member={dn})");
    assert_eq!(minimal.timeout, Duration::from_secs(5));
    let anonymous = build(minimal);
    assert!(matches!(
        login(&anonymous, "alice", "alice-ldap-pw").await,
        Outcome::NotFound
    ));

    assert!(serde_saphyr::from_str::<LdapBackend>("url: ldap://x\nuser_bsae: dc=x\n").is_err());

    let registry = auth_core::Registry::from_inventory().unwrap();
    let reg = registry.get("ldap").unwrap();
    let doc = |name: &str| {
        reg.options
            .iter()
            .find(|o| o.name == name)
            .copied()
            .unwrap()
    };
    assert!(doc("bind_password").secret);
    assert!(doc("url").required);
    assert_eq!(doc("user_filter").default, Some("(uid={username})"));
}

/// Latency of one login (connect, service bind, search, user bind, unbind) on loopback.
/// Run with `cargo test -p auth-backends --test ldap -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "measurement, not a check"]
async fn measure_login_latency() {
    let Some(s) = Slapd::start_or_skip().await else {
        return;
    };
    for (mode, backend) in [
        ("search-then-bind", build(search_options(&s))),
        ("direct bind", build(direct_options(&s))),
    ] {
        let n = 200;
        let t = std::time::Instant::now();
        for _ in 0..n {
            authenticated(login(&backend, "alice", "alice-ldap-pw").await);
        }
        eprintln!(
            "ldap {mode}: {:?} per login ({n} sequential)",
            t.elapsed() / n
        );
    }
}
