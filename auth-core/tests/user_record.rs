//! `#[derive(UserRecord)]` used for real: the `User` a record maps to.

use std::collections::BTreeSet;

use auth_core::{IntoUser, MappingError, User, UserRecord};

#[derive(UserRecord)]
struct Row {
    #[user(id)]
    id: i64,
    #[user(username)]
    login: String,
    #[user(email)]
    email: Option<String>,
    #[user(name)]
    full_name: String,
    #[user(groups, split = ",")]
    roles: String,
    #[user(attr = "department")]
    dept: Option<String>,
    #[user(attr = "phone")]
    phones: Vec<String>,
    // Not mapped: a column the backend uses itself.
    #[allow(dead_code)]
    password_hash: String,
}

fn row() -> Row {
    Row {
        id: 42,
        login: "alice".into(),
        email: Some("alice@example.org".into()),
        full_name: "Alice Liddell".into(),
        roles: "staff, admins,,readers ".into(),
        dept: Some("research".into()),
        phones: vec!["+1 555 0100".into(), "+1 555 0101".into()],
        password_hash: "pbkdf2_sha256$...".into(),
    }
}

#[test]
fn a_row_maps_to_its_user() {
    let user = row().into_user().unwrap();
    let expected = User {
        id: "42".into(),
        username: "alice".into(),
        email: Some("alice@example.org".into()),
        display_name: Some("Alice Liddell".into()),
        groups: ["admins", "readers", "staff"].map(String::from).into(),
        attributes: [
            ("department".to_string(), vec!["research".to_string()]),
            (
                "phone".to_string(),
                vec!["+1 555 0100".to_string(), "+1 555 0101".to_string()],
            ),
        ]
        .into(),
        backend: String::new(),
        credential_version: None,
    };
    assert_eq!(user, expected);
}

#[test]
fn absent_optional_values_leave_fields_empty() {
    let user = Row {
        email: None,
        dept: None,
        phones: vec![],
        roles: String::new(),
        ..row()
    }
    .into_user()
    .unwrap();
    assert_eq!(user.email, None);
    assert!(user.groups.is_empty());
    assert!(user.attributes.is_empty());
}

#[test]
fn an_empty_required_value_is_an_error() {
    let err = Row {
        full_name: String::new(),
        ..row()
    }
    .into_user()
    .unwrap_err();
    assert_eq!(err, MappingError::Missing("full_name".into()));
    let err = Row {
        login: String::new(),
        ..row()
    }
    .into_user()
    .unwrap_err();
    assert_eq!(err, MappingError::Missing("login".into()));
}

/// An LDAP-like entry: multi-valued DN groups reduced to their `cn`.
#[derive(UserRecord)]
struct Entry {
    #[user(username)]
    uid: Vec<String>,
    #[user(email)]
    mail: Vec<String>,
    #[user(groups, group_name = "cn")]
    member_of: Vec<String>,
    #[user(attr = "title")]
    title: Option<Vec<String>>,
}

#[test]
fn dn_groups_are_reduced_to_their_cn() {
    let user = Entry {
        uid: vec!["bob".into()],
        mail: vec![],
        member_of: vec![
            "cn=admins,ou=groups,dc=example,dc=org".into(),
            "CN=Dev\\2C Ops,ou=groups,dc=example,dc=org".into(),
            "not-a-dn".into(),
        ],
        title: Some(vec!["Builder".into(), "Foreman".into()]),
    }
    .into_user()
    .unwrap();
    assert_eq!(user.id, "bob", "id defaults to the username");
    assert_eq!(user.email, None);
    let groups: BTreeSet<&str> = user.groups.iter().map(String::as_str).collect();
    assert_eq!(groups, BTreeSet::from(["admins", "Dev, Ops", "not-a-dn"]));
    assert_eq!(user.attributes["title"], ["Builder", "Foreman"]);
}

#[test]
fn several_values_for_a_single_valued_field_are_an_error() {
    let err = Entry {
        uid: vec!["bob".into(), "robert".into()],
        mail: vec![],
        member_of: vec![],
        title: None,
    }
    .into_user()
    .unwrap_err();
    assert_eq!(
        err,
        MappingError::MultipleValues {
            attribute: "uid".into(),
            target: "username",
            count: 2
        }
    );
}

#[derive(UserRecord)]
struct Numbered {
    #[user(id)]
    user_id: u64,
    #[user(username)]
    name: String,
}

#[test]
fn numeric_ids_become_strings() {
    let user = Numbered {
        user_id: 7,
        name: "carol".into(),
    }
    .into_user()
    .unwrap();
    assert_eq!((user.id.as_str(), user.username.as_str()), ("7", "carol"));
}

#[derive(UserRecord)]
struct Versioned {
    #[user(username)]
    name: String,
    #[user(credential_version)]
    updated_at: i64,
    // Not mapped, and not `Clone`: a borrowed record is mapped without it.
    #[allow(dead_code)]
    handle: std::sync::Mutex<()>,
}

#[test]
fn credential_version_comes_from_its_field() {
    let record = Versioned {
        name: "dora".into(),
        updated_at: 1_700_000_000,
        handle: Default::default(),
    };
    let user = (&record).into_user().unwrap();
    assert_eq!(user.credential_version.as_deref(), Some("1700000000"));
    assert_eq!(user.username, "dora");
    assert_eq!(
        record.into_user().unwrap(),
        user,
        "owned and borrowed map alike"
    );
}

#[derive(UserRecord)]
struct OptionalVersion {
    #[user(username)]
    login: String,
    #[user(credential_version)]
    version: Vec<String>,
}

#[test]
fn a_credential_version_is_one_value_or_none() {
    let none = OptionalVersion {
        login: "erin".into(),
        version: vec![],
    };
    assert_eq!(none.into_user().unwrap().credential_version, None);
    let two = OptionalVersion {
        login: "erin".into(),
        version: vec!["a".into(), "b".into()],
    };
    assert_eq!(
        two.into_user().unwrap_err(),
        MappingError::MultipleValues {
            attribute: "version".into(),
            target: "credential_version",
            count: 2
        }
    );
}

#[test]
fn borrowed_rows_map_like_owned_ones() {
    let rows = [row()];
    let users: Vec<User> = rows.iter().map(|r| r.into_user().unwrap()).collect();
    assert_eq!(users[0], row().into_user().unwrap());
}

#[test]
fn the_yaml_mapping_takes_the_first_email_unless_strict() {
    use std::collections::BTreeMap;

    use auth_core::AttributeMapping;
    let record: BTreeMap<String, Vec<String>> = [
        ("uid", vec!["bob"]),
        ("mail", vec!["bob@example.org", "robert@example.org"]),
        ("cn", vec!["Bob Builder", "Robert Builder"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    let yaml = "{ username: uid, email: mail, name: cn }";
    let lenient: AttributeMapping = serde_saphyr::from_str(yaml).unwrap();
    assert!(!lenient.strict, "lenient by default");
    let user = lenient.map(&record).unwrap();
    assert_eq!(user.email.as_deref(), Some("bob@example.org"));
    assert_eq!(user.display_name.as_deref(), Some("Bob Builder"));

    let strict: AttributeMapping =
        serde_saphyr::from_str("{ username: uid, email: mail, name: cn, strict: true }").unwrap();
    assert_eq!(
        strict.map(&record).unwrap_err(),
        MappingError::MultipleValues {
            attribute: "mail".into(),
            target: "email",
            count: 2
        }
    );

    // An ambiguous identity is an error, strict or not.
    let mut twice = record.clone();
    twice.insert("uid".into(), vec!["bob".into(), "robert".into()]);
    for mapping in [&lenient, &strict] {
        assert!(matches!(
            mapping.map(&twice),
            Err(MappingError::MultipleValues {
                target: "username",
                ..
            })
        ));
    }
    let with_id: AttributeMapping = serde_saphyr::from_str("{ id: cn, username: uid }").unwrap();
    assert!(matches!(
        with_id.map(&record),
        Err(MappingError::MultipleValues { target: "id", .. })
    ));
}
