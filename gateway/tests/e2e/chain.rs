//! The issue's "done when": a chain of `ldap` (real slapd, search-then-bind, memberOf groups,
//! `provision: update`), `sql` (Django `auth_user` in SQLite, loaded from the committed
//! fixture), `htpasswd` (file made by the real `htpasswd -bB`) and `local` (the users_db store)
//! works end to end through the gateway, started in-process from a YAML file through the real
//! loader and chain builder, in front of a recording upstream.

use crate::fault_support;
use crate::support;

use crate::backend_support;

use std::process::Command;
use std::time::Duration;

use auth_backends::UserStore;
use backend_support::db::TestDb;
use backend_support::slapd::{self, Slapd};
use fault_support::Gw;
use support::RecordingUpstream;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn sorted_groups(value: Option<String>) -> Vec<String> {
    let mut groups: Vec<String> = value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_string)
        .collect();
    groups.sort();
    groups
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldap_sql_htpasswd_local_chain_works_end_to_end() {
    let Some(ldap) = Slapd::start_or_skip().await else {
        return;
    };
    let django = TestDb::sqlite().await;
    let upstream = RecordingUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();

    let htpasswd = dir.path().join("ops.htpasswd");
    let out = Command::new("htpasswd")
        .arg("-bBc")
        .arg(&htpasswd)
        .args(["henry", "henry-ht-pw"])
        .output()
        .expect("htpasswd (apt-get install apache2-utils) runs");
    assert!(
        out.status.success(),
        "htpasswd -bB failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::fs::read_to_string(&htpasswd)
            .unwrap()
            .starts_with("henry:$2y$"),
        "htpasswd -B writes a bcrypt hash"
    );
    let groups_file = dir.path().join("ops.groups");
    std::fs::write(&groups_file, "ops: henry\n").unwrap();

    let users_db = format!("sqlite://{}", dir.path().join("users.db").display());
    let store = UserStore::connect(&users_db).await.unwrap();
    store
        .add(
            "lucy",
            Some("lucy-local-pw"),
            Some("lucy@example.org"),
            Some("Lucy Local"),
            &["locals".to_string()],
        )
        .await
        .unwrap();

    let yaml = format!(
        r#"
server:
  public_url: "http://127.0.0.1:8080"
upstream:
  url: "http://{upstream}"
  connect_timeout: 1s
  timeout: 5s
session:
  secure: false
  secret: "0123456789abcdef0123456789abcdef-test"
cache:
  credentials_ttl: 0s
protection:
  max_failures: 100000
users_db: "{users_db}"
chain:
  - name: directory
    type: ldap
    timeout: 5s
    provision: update
    options:
      url: "{ldap_url}"
      bind_dn: "{reader_dn}"
      bind_password: "{reader_pw}"
      user_base: "{people}"
      user_filter: "(uid={{username}})"
      group_attribute: memberOf
      group_name: cn
      attributes: {{ username: uid, email: mail, name: displayName, groups: memberOf }}
  - name: legacy-django
    type: sql
    timeout: 10s
    options:
      url: "{django_url}"
      user_query: "SELECT id, username, email, password, is_active FROM auth_user WHERE username = ?"
      get_user_query: "SELECT id, username, email, password, is_active FROM auth_user WHERE id = ?"
      groups_query: "SELECT g.name FROM auth_group g JOIN auth_user_groups ug ON ug.group_id = g.id WHERE ug.user_id = ?"
      password_column: password
      password_format: django
      active_column: is_active
      attributes: {{ id: id, username: username, email: email }}
  - name: ops
    type: htpasswd
    options:
      path: "{htpasswd}"
      groups_file: "{groups_file}"
  - name: local
    type: local
routes:
  - match: {{ path: / }}
    access: authenticated
"#,
        upstream = upstream.addr,
        ldap_url = ldap.url(),
        reader_dn = slapd::READER_DN,
        reader_pw = slapd::READER_PW,
        people = slapd::PEOPLE,
        django_url = django.url,
        htpasswd = htpasswd.display(),
        groups_file = groups_file.display(),
    );
    let gw = Gw::start(&yaml).await;
    let http = client();

    // One user from each backend: (user, password, entry, groups).
    let cases: &[(&str, &str, &str, &[&str])] = &[
        ("alice", "alice-ldap-pw", "directory", &["admins", "staff"]),
        ("dave", "dave-scrypt-pw", "legacy-django", &["editors"]),
        ("henry", "henry-ht-pw", "ops", &["ops"]),
        ("lucy", "lucy-local-pw", "local", &["locals"]),
    ];
    assert!(
        store.get_by_username("alice").await.unwrap().is_none(),
        "alice is not in the local store before she logs in"
    );
    for (i, (user, password, entry, groups)) in cases.iter().enumerate() {
        let path = format!("/app/{i}");
        let resp = http
            .get(gw.url(&path))
            .basic_auth(user, Some(password))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{user} via {entry}");
        let seen = upstream
            .requests
            .lock()
            .unwrap()
            .iter()
            .rfind(|r| r.path == path)
            .cloned()
            .unwrap_or_else(|| panic!("the upstream saw {path}"));
        assert_eq!(seen.all("x-remote-user"), vec![user.to_string()]);
        assert_eq!(seen.all("x-remote-backend"), vec![entry.to_string()]);
        assert_eq!(
            sorted_groups(seen.get("x-remote-groups")),
            groups.iter().map(|g| g.to_string()).collect::<Vec<_>>(),
            "groups of {user}"
        );
    }

    let before = upstream.requests.lock().unwrap().len();
    for (user, password, entry, _) in cases {
        let resp = http
            .get(gw.url("/app/denied"))
            .basic_auth(user, Some(format!("{password}-wrong")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "wrong password of {user} ({entry})");
    }
    let resp = http
        .get(gw.url("/app/denied"))
        .basic_auth("nobody-anywhere", Some("whatever-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "unknown user");
    assert_eq!(
        upstream.requests.lock().unwrap().len(),
        before,
        "no refused request reaches the upstream"
    );

    let alice = store
        .get_by_username("alice")
        .await
        .unwrap()
        .expect("alice is provisioned into the local store after her ldap login");
    assert_eq!(alice.source, "directory");
    assert_eq!(alice.email.as_deref(), Some("alice@example.org"));
    assert!(
        alice.groups.contains("staff") && alice.groups.contains("admins"),
        "provisioned groups: {:?}",
        alice.groups
    );
    assert!(
        alice.password_hash.is_none(),
        "a provisioned user cannot log in locally"
    );
    drop(gw);
}
