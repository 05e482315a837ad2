//! The `sql` backend against real SQLite, PostgreSQL and MariaDB holding Django's auth tables,
//! filled by Django's own `create_user` (`tests/fixtures/django/make.py`). Options are given as
//! an operator writes them in YAML.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_backends::sql::SqlBackend;
use auth_core::{Backend, BuildContext, Context, Credentials, Outcome, User};
use support::db::{MYSQL_ADDR, PG_ADDR, Proxy, TestDb};

fn backend(yaml: &str) -> Arc<dyn Backend> {
    let options: SqlBackend =
        serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
    options.build(&BuildContext::default()).expect("build")
}

/// The Django defaults: nothing but the URL.
fn django(db: &TestDb) -> Arc<dyn Backend> {
    backend(&format!("url: \"{}\"\n", db.url))
}

async fn login(backend: &Arc<dyn Backend>, username: &str, password: &str) -> Outcome {
    backend
        .authenticate(
            &Credentials::password(username, password),
            &Context::default(),
        )
        .await
}

fn authenticated(outcome: Outcome, who: &str) -> User {
    match outcome {
        Outcome::Authenticated(user) => user,
        other => panic!("{who}: expected Authenticated, got {other:?}"),
    }
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The 72-byte password of `carl` (Django's raw `bcrypt$`, see make.py).
fn pw72() -> String {
    format!("carl-bcrypt-{}", "x".repeat(60))
}

/// Everything a Django database must give, on one engine.
async fn django_scenarios(db: &TestDb) {
    let b = django(db);

    let alice = authenticated(login(&b, "alice", "alice-pbkdf2-pw").await, "alice");
    assert_eq!(alice.id, "1");
    assert_eq!(alice.username, "alice");
    assert_eq!(alice.email.as_deref(), Some("alice@example.org"));
    assert_eq!(alice.groups, set(&["editors", "staff"]));
    let version = alice
        .credential_version
        .clone()
        .expect("credential version");
    assert!(
        !version.contains("pbkdf2"),
        "the version must not reveal the hash"
    );

    for (user, pw) in [
        ("bob", "bob-argon2-pw"),
        ("carol", "carol-bcrypt-pw"),
        ("dave", "dave-scrypt-pw"),
    ] {
        let u = authenticated(login(&b, user, pw).await, user);
        assert_eq!(u.username, user);
        let wrong = login(&b, user, &format!("{pw}x")).await;
        assert!(matches!(wrong, Outcome::Rejected), "{user}: {wrong:?}");
    }
    let dave = authenticated(login(&b, "dave", "dave-scrypt-pw").await, "dave");
    assert_eq!(dave.email, None, "an empty email column is no email");
    assert_eq!(dave.groups, set(&["editors"]));

    let jose = authenticated(login(&b, "jos\u{e9}", "jos\u{e9}-p\u{e4}ss").await, "jose");
    assert_eq!(jose.username, "jos\u{e9}");
    assert_eq!(jose.groups, set(&["staff"]));

    assert!(matches!(
        login(&b, "alice", "wrong").await,
        Outcome::Rejected
    ));
    assert!(matches!(login(&b, "alice", "").await, Outcome::Rejected));
    // Inactive: the right password is denied, a wrong one is just rejected.
    let erin = login(&b, "erin", "erin-inactive-pw").await;
    assert!(
        matches!(&erin, Outcome::Denied(r) if r == "inactive"),
        "{erin:?}"
    );
    assert!(matches!(login(&b, "erin", "nope").await, Outcome::Rejected));
    // Unusable password (set_unusable_password): never a login.
    for pw in ["", "x", "!"] {
        assert!(
            matches!(login(&b, "frank", pw).await, Outcome::Rejected),
            "frank/{pw:?}"
        );
    }
    // Legacy MD5 is refused unless allowed: that user's refusal, not an outage.
    let oldie = login(&b, "oldie", "oldie-md5-pw").await;
    assert!(matches!(oldie, Outcome::Rejected), "{oldie:?}");
    // Django's make_password(""): the empty password never logs in.
    let nopw = login(&b, "nopw", "").await;
    assert!(
        matches!(nopw, Outcome::Rejected),
        "empty password: {nopw:?}"
    );
    // Django's raw `bcrypt$`: a password sharing only the 72 bytes bcrypt reads is refused.
    authenticated(login(&b, "carl", &pw72()).await, "carl");
    let carl = login(&b, "carl", &format!("{}-and-more", pw72())).await;
    assert!(
        matches!(carl, Outcome::Rejected),
        "72-byte prefix: {carl:?}"
    );
    // A row holding a plaintext password (or any unknown format) refuses that user only.
    let paula = login(&b, "paula", "paula-plain-pw").await;
    assert!(matches!(paula, Outcome::Rejected), "{paula:?}");
    authenticated(
        login(&b, "alice", "alice-pbkdf2-pw").await,
        "alice after paula",
    );
    assert_eq!(
        b.get_user("11").await.unwrap(),
        None,
        "paula cannot log in, so has no session"
    );

    assert!(matches!(login(&b, "nobody", "x").await, Outcome::NotFound));
    for injection in [
        "' OR '1'='1",
        "alice' --",
        "alice'; DROP TABLE auth_user; --",
        "%",
        "?",
    ] {
        let out = login(&b, injection, "alice-pbkdf2-pw").await;
        assert!(matches!(out, Outcome::NotFound), "{injection:?}: {out:?}");
    }

    // get_user restores by id; inactive, unusable and unknown users are gone.
    let restored = b.get_user("1").await.unwrap().expect("alice by id");
    assert_eq!(restored, alice);
    assert_eq!(b.get_user("5").await.unwrap(), None, "erin is inactive");
    assert_eq!(
        b.get_user("6").await.unwrap(),
        None,
        "frank has no usable password"
    );
    assert_eq!(b.get_user("999").await.unwrap(), None);
    assert_eq!(b.get_user("' OR '1'='1").await.unwrap(), None);
    assert_eq!(b.get_user("alice").await.unwrap(), None);

    // The schema is intact after the injection attempts.
    authenticated(login(&b, "alice", "alice-pbkdf2-pw").await, "alice again");

    // A password change (here: bob's hash given to alice) changes the credential version.
    db.execute("UPDATE auth_user SET password = (SELECT p FROM (SELECT password AS p FROM auth_user WHERE username = 'bob') AS x) WHERE username = 'alice'")
        .await;
    let changed = b.get_user("1").await.unwrap().expect("alice");
    assert_ne!(
        changed.credential_version.as_deref(),
        Some(version.as_str())
    );
    assert!(matches!(
        login(&b, "alice", "alice-pbkdf2-pw").await,
        Outcome::Rejected
    ));
    authenticated(
        login(&b, "alice", "bob-argon2-pw").await,
        "alice with bob's password",
    );

    let legacy = backend(&format!("url: \"{}\"\nallow_legacy_hashes: true\n", db.url));
    authenticated(login(&legacy, "oldie", "oldie-md5-pw").await, "oldie");
    assert!(b.health().await.is_ok());
}

#[tokio::test]
async fn django_on_sqlite() {
    let db = TestDb::sqlite().await;
    django_scenarios(&db).await;
}

#[tokio::test]
async fn django_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    django_scenarios(&db).await;
}

#[tokio::test]
async fn django_on_mariadb() {
    let Some(db) = TestDb::mysql().await else {
        return;
    };
    django_scenarios(&db).await;
}

#[tokio::test]
async fn custom_queries_and_mapping() {
    let db = TestDb::sqlite().await;
    let b = backend(&format!(
        r#"
url: "{}"
user_query: "SELECT id, username, email, first_name || ' ' || last_name AS full_name, password AS pw, is_staff AS staff FROM auth_user WHERE username = ? OR email = ?"
get_user_query: "SELECT id, username, email, first_name || ' ' || last_name AS full_name, password AS pw, is_staff AS staff FROM auth_user WHERE username = ?"
groups_query: ""
password_column: pw
password_format: django
active_column: ""
attributes: {{ id: username, username: username, email: email, name: full_name, extra: {{ staff: staff }} }}
"#,
        db.url
    ));
    // Login by email too (two placeholders, one value).
    let alice = authenticated(
        login(&b, "alice@example.org", "alice-pbkdf2-pw").await,
        "alice",
    );
    assert_eq!(alice.username, "alice");
    assert_eq!(alice.id, "alice");
    assert_eq!(alice.display_name.as_deref(), Some("Alice Example"));
    assert!(alice.groups.is_empty());
    assert_eq!(alice.attribute("staff"), Some("0"));
    // No active column: erin is not refused.
    authenticated(login(&b, "erin", "erin-inactive-pw").await, "erin");
    let restored = b.get_user("alice").await.unwrap().expect("alice");
    assert_eq!(restored.display_name, alice.display_name);
}

#[tokio::test]
async fn password_format_mismatch_is_not_a_login() {
    let db = TestDb::sqlite().await;
    let b = backend(&format!("url: \"{}\"\npassword_format: bcrypt\n", db.url));
    let out = login(&b, "alice", "alice-pbkdf2-pw").await;
    assert!(matches!(out, Outcome::Rejected), "{out:?}");
    let b = backend(&format!("url: \"{}\"\npassword_format: plain\n", db.url));
    // The hash itself is not a password.
    let out = login(&b, "alice", "alice-pbkdf2-pw").await;
    assert!(matches!(out, Outcome::Rejected), "{out:?}");
}

#[tokio::test]
async fn misconfigured_columns_are_unavailable() {
    let db = TestDb::sqlite().await;
    let b = backend(&format!(
        "url: \"{}\"\nuser_query: \"SELECT id, username, password FROM auth_user WHERE username = ?\"\n",
        db.url
    ));
    let out = login(&b, "alice", "alice-pbkdf2-pw").await;
    assert!(
        matches!(&out, Outcome::Unavailable(e) if e.to_string().contains("is_active")),
        "{out:?}"
    );
    assert!(b.health().await.is_ok(), "the query itself is valid");

    // A query naming a missing table: readiness says which option is wrong.
    let mut dbs = vec![TestDb::sqlite().await];
    dbs.extend(TestDb::postgres().await);
    dbs.extend(TestDb::mysql().await);
    for db in &dbs {
        let b = backend(&format!(
            "url: \"{}\"\ngroups_query: \"SELECT name FROM auth_grup WHERE id = ?\"\n",
            db.url
        ));
        let err = b
            .health()
            .await
            .expect_err("broken groups_query")
            .to_string();
        assert!(err.contains("groups_query"), "{}: {err}", db.url);
        assert!(django(db).health().await.is_ok(), "{}", db.url);
    }
}

#[tokio::test]
async fn unknown_users_cost_a_password_check() {
    let db = TestDb::sqlite().await;
    let b = django(&db);
    // Warm up: one check teaches the backend what a stored hash costs.
    let _ = login(&b, "alice", "wrong").await;
    let t = Instant::now();
    assert!(matches!(
        login(&b, "alice", "wrong").await,
        Outcome::Rejected
    ));
    let known = t.elapsed();
    let t = Instant::now();
    assert!(matches!(
        login(&b, "nobody", "wrong").await,
        Outcome::NotFound
    ));
    let unknown = t.elapsed();
    assert!(
        unknown * 3 >= known,
        "unknown user {unknown:?} vs wrong password {known:?}"
    );
    // A plaintext row is refused at the cost of a wrong password.
    let t = Instant::now();
    assert!(matches!(
        login(&b, "paula", "wrong").await,
        Outcome::Rejected
    ));
    let refused = t.elapsed();
    assert!(
        refused * 3 >= known,
        "refused format {refused:?} vs wrong password {known:?}"
    );
}

#[tokio::test]
async fn build_refuses_bad_options() {
    let bad = [
        "url: \"redis://127.0.0.1\"\n",
        "url: \"sqlite://x.db\"\nuser_query: \"SELECT 1\"\n",
        "url: \"sqlite://x.db\"\nmax_connections: 0\n",
    ];
    for yaml in bad {
        let options: SqlBackend = serde_saphyr::from_str(yaml).unwrap();
        assert!(options.build(&BuildContext::default()).is_err(), "{yaml}");
    }
    assert!(serde_saphyr::from_str::<SqlBackend>("url: x\nuser_qery: y\n").is_err());
    let options: SqlBackend =
        serde_saphyr::from_str("url: \"sqlite://x.db\"\npassword: hunter2\n").unwrap();
    assert!(
        options.build(&BuildContext::default()).is_err(),
        "SQLite has no password"
    );

    // Passwords, in the URL or as an option, never show in Debug.
    let options: SqlBackend = serde_saphyr::from_str(
        "url: \"postgres://app:hunter2@127.0.0.1/db\"\npassword: \"s3cret\"\n",
    )
    .unwrap();
    let shown = format!("{options:?}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("s3cret"),
        "{shown}"
    );
    assert!(shown.contains("127.0.0.1"), "{shown}");
    assert!(serde_saphyr::from_str::<SqlBackend>("url: x\npassword_format: md5\n").is_err());
}

#[tokio::test]
async fn database_down_at_start_and_mid_test() {
    // Nothing listens on this port: the backend builds (lazy pool) and answers Unavailable.
    let closed = support::free_port();
    let b = backend(&format!(
        "url: \"postgres://postgres@127.0.0.1:{closed}/test\"\nconnect_timeout: 1s\n"
    ));
    let out = login(&b, "alice", "alice-pbkdf2-pw").await;
    assert!(matches!(out, Outcome::Unavailable(_)), "{out:?}");
    assert!(b.get_user("1").await.is_err());
    assert!(b.health().await.is_err());

    if let Some(db) = TestDb::postgres().await {
        outage_through_proxy(&db, PG_ADDR).await;
    }
    if let Some(db) = TestDb::mysql().await {
        outage_through_proxy(&db, MYSQL_ADDR).await;
    }
}

/// Cuts the connection to the database mid-test, then restores it.
async fn outage_through_proxy(db: &TestDb, addr: &str) {
    let mut proxy = Proxy::new(addr).await;
    let url = db.url.replacen(addr, &proxy.addr.to_string(), 1);
    let b = backend(&format!(
        "url: \"{url}\"\nconnect_timeout: 1s\nquery_timeout: 2s\n"
    ));
    authenticated(login(&b, "alice", "alice-pbkdf2-pw").await, "alice");

    proxy.stop();
    let started = Instant::now();
    let out = login(&b, "alice", "alice-pbkdf2-pw").await;
    assert!(matches!(out, Outcome::Unavailable(_)), "{addr}: {out:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(b.get_user("1").await.is_err());
    assert!(b.health().await.is_err());

    proxy.start().await;
    // The pool may hand out a dead connection once more before it notices.
    let mut recovered = false;
    for _ in 0..5 {
        if let Outcome::Authenticated(u) = login(&b, "alice", "alice-pbkdf2-pw").await {
            assert_eq!(u.username, "alice");
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        recovered,
        "{addr}: the backend did not recover after the database came back"
    );
}

#[tokio::test]
async fn sqlite_file_missing_then_created() {
    let dir = tempfile::tempdir().unwrap();
    let b = SqlBackend::build(
        serde_saphyr::from_str("url: sqlite://later.sqlite3\n").unwrap(),
        &BuildContext::new("legacy", dir.path()),
    )
    .expect("builds while the file is missing");
    let out = login(&b, "alice", "alice-pbkdf2-pw").await;
    assert!(matches!(out, Outcome::Unavailable(_)), "{out:?}");
    assert!(
        !dir.path().join("later.sqlite3").exists(),
        "the backend must not create it"
    );

    let db = TestDb::sqlite().await;
    let support::db::Kind::Sqlite(src) = &db.kind else {
        panic!("a SQLite database")
    };
    std::fs::copy(
        src.path().join("django.sqlite3"),
        dir.path().join("later.sqlite3"),
    )
    .unwrap();
    authenticated(login(&b, "alice", "alice-pbkdf2-pw").await, "alice");
}

#[tokio::test]
async fn concurrent_logins_share_the_pool() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let b = backend(&format!("url: \"{}\"\nmax_connections: 3\n", db.url));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let b = b.clone();
        tasks.spawn(async move {
            let (user, pw) = if i % 2 == 0 {
                ("alice", "alice-pbkdf2-pw")
            } else {
                ("bob", "bob-argon2-pw")
            };
            login(&b, user, pw).await.label()
        });
    }
    while let Some(label) = tasks.join_next().await {
        assert_eq!(label.unwrap(), "authenticated");
    }
}

/// The entry as `gateway.reference.yaml` writes it, with its relative SQLite path resolved
/// against the config file's directory.
#[tokio::test]
async fn reference_yaml_options() {
    let db = TestDb::sqlite().await;
    let support::db::Kind::Sqlite(dir) = &db.kind else {
        panic!("a SQLite database")
    };
    let yaml = r#"
url: sqlite://django.sqlite3                # postgres://... mysql://...
user_query: "SELECT id, username, email, password, is_active FROM auth_user WHERE username = ?"
get_user_query: "SELECT id, username, email, password, is_active FROM auth_user WHERE id = ?"
groups_query: "SELECT g.name FROM auth_group g JOIN auth_user_groups ug ON ug.group_id = g.id WHERE ug.user_id = ?"
password_column: password
password_format: auto                       # auto | django | bcrypt | argon2 | sha-crypt | plain
active_column: is_active
attributes: { id: id, username: username, email: email }
"#;
    let options: SqlBackend = serde_saphyr::from_str(yaml).unwrap();
    let b = options
        .build(&BuildContext::new("legacy-django", dir.path()))
        .expect("build");
    let alice = authenticated(login(&b, "alice", "alice-pbkdf2-pw").await, "alice");
    assert_eq!(alice.groups, set(&["editors", "staff"]));
    assert_eq!(b.get_user("1").await.unwrap().unwrap().username, "alice");

    let registry = auth_core::Registry::from_inventory().unwrap();
    let reg = registry.get("sql").unwrap();
    assert!(reg.options.iter().any(|o| o.name == "allow_legacy_hashes"));
    assert!(
        reg.options.iter().all(|o| !o.doc.is_empty()),
        "every option is documented"
    );
}

/// Latency of one login per engine (query, groups query, PBKDF2 check at 20000 iterations).
/// Run with `cargo test -p auth-backends --test sql -- --ignored --nocapture` (use --release
/// for realistic hashing costs).
#[tokio::test]
#[ignore = "measurement, not a check"]
async fn measure_login_latency() {
    let mut dbs = vec![("sqlite", TestDb::sqlite().await)];
    if let Some(db) = TestDb::postgres().await {
        dbs.push(("postgres", db));
    }
    if let Some(db) = TestDb::mysql().await {
        dbs.push(("mariadb", db));
    }
    for (name, db) in &dbs {
        let b = django(db);
        let n = 50;
        let t = Instant::now();
        for _ in 0..n {
            authenticated(login(&b, "alice", "alice-pbkdf2-pw").await, "alice");
        }
        let login_time = t.elapsed() / n;
        let t = Instant::now();
        for _ in 0..n {
            b.get_user("1").await.unwrap().unwrap();
        }
        eprintln!(
            "sql {name}: {login_time:?} per login, {:?} per get_user",
            t.elapsed() / n
        );
    }
}
