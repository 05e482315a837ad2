//! Password verification against hashes made by the real tools (htpasswd, openssl passwd,
//! Django; see tests/fixtures/hashes/make.sh), and refusals of what must never verify.

use std::time::{Duration, Instant};

use auth_core::Outcome;
use auth_core::password::{
    Account, HashError, HashFormat, Verification, VerifyPolicy, credential_version, dummy_hash,
    hash_password, refusal_counts, verify, verify_blocking, verify_stored,
};

#[derive(serde::Deserialize)]
struct Vector {
    label: String,
    password: String,
    hash: String,
    needs: Option<String>,
}

fn vectors() -> Vec<Vector> {
    let text = include_str!("fixtures/hashes/vectors.jsonl");
    text.lines()
        .map(|line| serde_json::from_str(line).expect("vector line"))
        .collect()
}

fn policy_for(needs: Option<&str>) -> VerifyPolicy {
    VerifyPolicy {
        allow_legacy: needs == Some("legacy"),
        allow_plaintext: needs == Some("plaintext"),
        allow_des_crypt: needs == Some("des_crypt"),
    }
}

#[test]
fn every_vector_verifies_its_password_and_refuses_another() {
    let vectors = vectors();
    assert!(vectors.len() >= 80, "only {} vectors", vectors.len());
    // Two threads: the vectors include Django's 1,000,000-round PBKDF2 and 100 MiB Argon2.
    let (a, b) = vectors.split_at(vectors.len() / 2);
    std::thread::scope(|scope| {
        for half in [a, b] {
            scope.spawn(move || {
                for v in half {
                    let policy = policy_for(v.needs.as_deref());
                    // DES crypt stored only the first 8 bytes of a longer password: that
                    // prefix matches, the whole password never does.
                    let des_long = v.needs.as_deref() == Some("des_crypt") && v.password.len() > 8;
                    let right = if des_long {
                        &v.password[..8]
                    } else {
                        v.password.as_str()
                    };
                    assert_eq!(
                        verify(&v.hash, right, HashFormat::Auto, &policy),
                        Ok(true),
                        "{}: right password",
                        v.label
                    );
                    if des_long {
                        assert_eq!(
                            verify(&v.hash, &v.password, HashFormat::Auto, &policy),
                            Ok(false),
                            "{}: over 8 bytes",
                            v.label
                        );
                    }
                    let wrong = format!("{}!", v.password);
                    let wrong = if v.needs.as_deref() == Some("des_crypt") {
                        // DES crypt reads 8 characters: change one of them.
                        format!("Z{}", &v.password[1..])
                    } else {
                        wrong
                    };
                    assert_eq!(
                        verify(&v.hash, &wrong, HashFormat::Auto, &policy),
                        Ok(false),
                        "{}: wrong password",
                        v.label
                    );
                }
            });
        }
    });
}

#[test]
fn vectors_cover_every_format() {
    let vectors = vectors();
    for prefix in [
        "$2y$",
        "$2a$",
        "$2b$",
        "$argon2id$",
        "$argon2i$",
        "$argon2d$",
        "$apr1$",
        "$1$",
        "{SHA}",
        "$5$",
        "$6$",
        "pbkdf2_sha256$",
        "pbkdf2_sha1$",
        "argon2$argon2id$",
        "bcrypt_sha256$$2b$",
        "bcrypt$$2b$",
        "scrypt$",
        "md5$",
        "sha1$",
        "sha1$$",
    ] {
        assert!(
            vectors.iter().any(|v| v.hash.starts_with(prefix)),
            "no vector for {prefix}"
        );
    }
}

#[test]
fn weak_formats_are_refused_unless_the_policy_allows_them() {
    for v in vectors() {
        let Some(needs) = v.needs.as_deref() else {
            continue;
        };
        let result = verify(
            &v.hash,
            &v.password,
            HashFormat::Auto,
            &VerifyPolicy::STRICT,
        );
        match needs {
            "legacy" => assert!(
                matches!(result, Err(HashError::LegacyRefused { .. })),
                "{}: {result:?}",
                v.label
            ),
            "des_crypt" => assert_eq!(result, Err(HashError::DesCryptRefused), "{}", v.label),
            "plaintext" => assert!(
                matches!(result, Err(HashError::UnknownFormat { .. })),
                "{}: {result:?}",
                v.label
            ),
            other => panic!("unexpected needs {other}"),
        }
    }
}

#[test]
fn unknown_format_errors_name_the_prefix_but_never_the_secret() {
    let err = verify("$9$abc$def", "pw", HashFormat::Auto, &VerifyPolicy::STRICT).unwrap_err();
    assert!(matches!(&err, HashError::UnknownFormat { format } if format.contains("$9$")));
    let err = verify(
        "{SSHA}abcdefgh",
        "pw",
        HashFormat::Auto,
        &VerifyPolicy::STRICT,
    )
    .unwrap_err();
    assert!(err.to_string().contains("{SSHA}"), "{err}");
    let err = verify(
        "crypt$$abN0vcDs1vGS.",
        "pw",
        HashFormat::Auto,
        &VerifyPolicy::STRICT,
    )
    .unwrap_err();
    assert!(err.to_string().contains("crypt$"), "{err}");
    // A stored plaintext password is not quoted in the error.
    let err = verify(
        "hunter2$secret",
        "pw",
        HashFormat::Auto,
        &VerifyPolicy::STRICT,
    )
    .unwrap_err();
    assert!(matches!(err, HashError::UnknownFormat { .. }));
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn empty_and_unusable_hashes_are_always_refused() {
    let open = VerifyPolicy {
        allow_legacy: true,
        allow_plaintext: true,
        allow_des_crypt: true,
    };
    for format in [HashFormat::Auto, HashFormat::Django, HashFormat::Plain] {
        assert_eq!(verify("", "", format, &open), Err(HashError::Empty));
        assert_eq!(
            verify("!sP8xQ2rLk9", "!sP8xQ2rLk9", format, &open),
            Err(HashError::Unusable)
        );
        assert_eq!(verify("!", "!", format, &open), Err(HashError::Unusable));
    }
}

#[test]
fn absurd_costs_are_refused_without_hashing() {
    let hashes = [
        "pbkdf2_sha256$999999999$salt$zjLsMCuKO7wU0ga9odHn+5WuaWdKaK+y2VUjyxUNjiQ=",
        "pbkdf2_sha1$10000001$salt$2jmj7l5rSw0yVb/vlWAYkK/YBwk=",
        "$2b$31$......................21jzCB1r6pN6rp5O2Ev0ejjTAboskKm",
        "$2y$17$......................21jzCB1r6pN6rp5O2Ev0ejjTAboskKm",
        "$argon2id$v=19$m=4194304,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
        "$argon2id$v=19$m=19456,t=100000,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
        "argon2$argon2id$v=19$m=2000000,t=2,p=8$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
        "scrypt$1073741824$salt$8$1$SEPxWovvWbfnAdf6huvoCcNtb6f5S+",
        "scrypt$16384$salt$8$100000$SEPxWovvWbfnAdf6huvoCcNtb6f5S+",
        "$6$rounds=999999999$abcdefgh$6gG3kGYaPPEYycUB5bGpbANMg5mUFmFh8cwWoupsQd1eU",
    ];
    for hash in hashes {
        let started = Instant::now();
        let result = verify(hash, "password", HashFormat::Auto, &VerifyPolicy::STRICT);
        assert!(
            matches!(result, Err(HashError::CostTooHigh { .. })),
            "{hash}: {result:?}"
        );
        assert!(started.elapsed() < Duration::from_millis(100), "{hash}");
    }
}

#[test]
fn malformed_hashes_error_out() {
    for hash in [
        "$2b$10$tooshort",
        "$argon2id$v=19$m=19456,t=2,p=1$onlysalt",
        "pbkdf2_sha256$abc$salt$hash",
        "pbkdf2_sha256$1000$salt$not base64!",
        "$apr1$salt$short",
        "$6$salt$short",
        "scrypt$1000$salt$8$1$AAAA",
    ] {
        let result = verify(hash, "password", HashFormat::Auto, &VerifyPolicy::STRICT);
        assert!(
            matches!(result, Err(HashError::Malformed { .. })),
            "{hash}: {result:?}"
        );
    }
}

#[test]
fn a_configured_format_refuses_other_formats() {
    let bcrypt = vectors()
        .into_iter()
        .find(|v| v.hash.starts_with("$2y$"))
        .expect("a bcrypt vector");
    assert_eq!(
        verify(
            &bcrypt.hash,
            &bcrypt.password,
            HashFormat::Bcrypt,
            &VerifyPolicy::STRICT
        ),
        Ok(true)
    );
    for format in [HashFormat::Django, HashFormat::Argon2, HashFormat::ShaCrypt] {
        assert!(
            matches!(
                verify(
                    &bcrypt.hash,
                    &bcrypt.password,
                    format,
                    &VerifyPolicy::STRICT
                ),
                Err(HashError::FormatMismatch { .. })
            ),
            "{format}"
        );
    }
    // `plain` compares the stored value itself, hash-looking or not.
    assert_eq!(
        verify(
            &bcrypt.hash,
            &bcrypt.hash,
            HashFormat::Plain,
            &VerifyPolicy::STRICT
        ),
        Ok(true)
    );
    assert_eq!(
        verify(
            "s3cret",
            "s3cret ",
            HashFormat::Plain,
            &VerifyPolicy::STRICT
        ),
        Ok(false)
    );
}

#[test]
fn hash_format_reads_the_yaml_names() {
    for (yaml, format) in [
        ("auto", HashFormat::Auto),
        ("django", HashFormat::Django),
        ("bcrypt", HashFormat::Bcrypt),
        ("argon2", HashFormat::Argon2),
        ("sha-crypt", HashFormat::ShaCrypt),
        ("plain", HashFormat::Plain),
    ] {
        let parsed: HashFormat = serde_saphyr::from_str(yaml).expect(yaml);
        assert_eq!(parsed, format);
        assert_eq!(format.to_string(), yaml);
    }
    assert!(serde_saphyr::from_str::<HashFormat>("md4").is_err());
}

#[test]
fn new_passwords_are_argon2id_with_owasp_parameters() {
    let hash = hash_password("Tr0ub4dor&3").expect("hash");
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert_ne!(hash, hash_password("Tr0ub4dor&3").expect("hash"), "salted");
    let strict = VerifyPolicy::STRICT;
    assert_eq!(
        verify(&hash, "Tr0ub4dor&3", HashFormat::Argon2, &strict),
        Ok(true)
    );
    assert_eq!(
        verify(&hash, "Tr0ub4dor&4", HashFormat::Auto, &strict),
        Ok(false)
    );
    assert!(dummy_hash().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
}

#[test]
fn credential_version_changes_with_the_hash_and_hides_it() {
    let a = hash_password("one").expect("hash");
    let b = hash_password("two").expect("hash");
    assert_eq!(credential_version(&a), credential_version(&a));
    assert_ne!(credential_version(&a), credential_version(&b));
    assert_eq!(credential_version(&a).len(), 32);
    assert!(!a.contains(&credential_version(&a)));
    assert!(!credential_version("plaintext-pw").contains("plaintext"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_blocking_gives_the_same_answers() {
    let v = vectors()
        .into_iter()
        .find(|v| v.hash.starts_with("$6$"))
        .expect("a sha512-crypt vector");
    let strict = VerifyPolicy::STRICT;
    assert_eq!(
        verify_blocking(&v.hash, &v.password, HashFormat::Auto, &strict).await,
        Ok(true)
    );
    assert_eq!(
        verify_blocking(&v.hash, "nope", HashFormat::Auto, &strict).await,
        Ok(false)
    );
    assert_eq!(
        verify_blocking("", "", HashFormat::Auto, &strict).await,
        Err(HashError::Empty)
    );
}

#[test]
fn identify_names_formats_without_hashing() {
    use auth_core::password::identify;
    let strict = VerifyPolicy::STRICT;
    let name = |hash: &str| identify(hash, HashFormat::Auto, &strict);
    assert_eq!(name("$apr1$N3Vf.L/0$NU.afzLxriHQ3vLkTNt9y/"), Ok("apr1"));
    assert_eq!(name("{SHA}EfatjsUqKYSrqv18O1FlA3hcIHI="), Ok("{SHA}"));
    assert_eq!(name("pqGxK1tZOgZTY"), Err(HashError::DesCryptRefused));
    let started = Instant::now();
    assert!(
        name("pbkdf2_sha256$9000000$salt$zjLsMCuKO7wU0ga9odHn+5WuaWdKaK+y2VUjyxUNjiQ=").is_ok()
    );
    assert!(started.elapsed() < Duration::from_millis(100));
    let plain = VerifyPolicy {
        allow_plaintext: true,
        ..VerifyPolicy::STRICT
    };
    assert_eq!(identify("hunter2", HashFormat::Auto, &plain), Ok("plain"));
}

#[test]
fn the_representative_hash_is_of_the_most_common_usable_format() {
    use auth_core::password::representative_hash;
    let bcrypt_a = "$2y$05$2h9XkcRpnJ1oohrtmzJRFu03naeJKuvH8e9APtAek5GlOWBTuINA6";
    let bcrypt_b = "$2y$10$jpT.S1Wpk2ylGrodDl2cmuJVdlBr9i4KQ351rzy7OTM9T1dz1H9y.";
    let sha = "{SHA}EfatjsUqKYSrqv18O1FlA3hcIHI=";
    let des = "pqGxK1tZOgZTY";
    let strict = VerifyPolicy::STRICT;
    assert_eq!(
        representative_hash(
            [sha, des, des, des, bcrypt_a, bcrypt_b],
            HashFormat::Auto,
            &strict
        ),
        Some(bcrypt_a)
    );
    assert_eq!(
        representative_hash([sha, bcrypt_a], HashFormat::Auto, &strict),
        Some(sha)
    );
    assert_eq!(
        representative_hash([des, ""], HashFormat::Auto, &strict),
        None
    );
}

/// The 72-byte password of the bcrypt vectors below: all that bcrypt reads.
fn pw72() -> String {
    format!("carl-bcrypt-{}", "x".repeat(60))
}

/// `htpasswd -nbB -C 4 u "$(pw72)"`.
const HTPASSWD_BCRYPT_72: &str = "$2y$04$SBvQWCkhpQSpBI.k8YEKPehrfmxqGb4uU0nOsTLmxFT1qW0IvSzzC";
/// Django 5.2 `make_password(pw72(), hasher="bcrypt")` (raw bcrypt, user `carl` of
/// tests/fixtures/django/data.sql).
const DJANGO_BCRYPT_72: &str =
    "bcrypt$$2b$06$8R/Vzn4x3T4hOMezHyQLmeztO3wxHdPOCY/o.Suu8EvfxX07zs.1u";
/// `htpasswd -nbB -C 4 u ""`: a real hash of the empty password.
const HTPASSWD_EMPTY: &str = "$2y$04$aYu0/dOZtfmKQMaK.8AM1esTlD524tvxW.V44JQDK6CZleKMqqXb6";
/// Django 5.2 `make_password("")` (user `nopw` of tests/fixtures/django/data.sql).
const DJANGO_EMPTY: &str =
    "pbkdf2_sha256$20000$GTXP1k2neQggZTDnsC7bf8$Qs/6iO97CYVdwhaJUYHWnff1EIAGhlggPO9O7h4a9rs=";
/// `htpasswd -nbB -C 10`, of a password the tests never guess.
const BCRYPT_10: &str = "$2y$10$jpT.S1Wpk2ylGrodDl2cmuJVdlBr9i4KQ351rzy7OTM9T1dz1H9y.";

#[test]
fn bcrypt_never_matches_a_password_over_72_bytes() {
    let strict = VerifyPolicy::STRICT;
    for hash in [HTPASSWD_BCRYPT_72, DJANGO_BCRYPT_72] {
        assert_eq!(verify(hash, &pw72(), HashFormat::Auto, &strict), Ok(true));
        for longer in [format!("{}x", pw72()), format!("{} and anything", pw72())] {
            assert_eq!(
                verify(hash, &longer, HashFormat::Auto, &strict),
                Ok(false),
                "{hash}: shares only the first 72 bytes"
            );
        }
    }
}

#[test]
fn des_crypt_never_matches_a_password_over_8_bytes() {
    // `htpasswd -nbd u longpassword` (which warns that it kept 8 characters).
    let des = "yVtVa/8UUsalE";
    let policy = VerifyPolicy {
        allow_des_crypt: true,
        ..VerifyPolicy::STRICT
    };
    assert_eq!(verify(des, "longpass", HashFormat::Auto, &policy), Ok(true));
    for longer in ["longpassword", "longpassX"] {
        assert_eq!(
            verify(des, longer, HashFormat::Auto, &policy),
            Ok(false),
            "{longer}"
        );
    }
}

fn account<'a>(username: &'a str, stored: Option<&'a str>, cost_like: &'a str) -> Account<'a> {
    Account {
        entry: "password-tests",
        username,
        stored,
        cost_like,
    }
}

async fn stored(hash: Option<&str>, password: &str, policy: &VerifyPolicy) -> Verification {
    verify_stored(
        account("someone", hash, ""),
        password,
        HashFormat::Auto,
        policy,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_stored_follows_the_protocol() {
    let strict = VerifyPolicy::STRICT;
    // A real hash of "" matches "" for the bare check; verify_stored never lets it in.
    for hash in [HTPASSWD_EMPTY, DJANGO_EMPTY] {
        assert_eq!(verify(hash, "", HashFormat::Auto, &strict), Ok(true));
        assert_eq!(
            stored(Some(hash), "", &strict).await,
            Verification::Mismatch
        );
    }
    assert_eq!(
        stored(Some(HTPASSWD_BCRYPT_72), &pw72(), &strict).await,
        Verification::Match
    );
    assert_eq!(
        stored(Some(HTPASSWD_BCRYPT_72), &format!("{}x", pw72()), &strict).await,
        Verification::Mismatch
    );
    assert_eq!(
        stored(None, "anything", &strict).await,
        Verification::UnknownUser
    );
    // Passwords the policy refuses never match, whatever is stored.
    let plain = VerifyPolicy {
        allow_plaintext: true,
        ..VerifyPolicy::STRICT
    };
    let long = "p".repeat(auth_core::policy::MAX_PASSWORD_BYTES + 1);
    for password in ["pw\0", "pw\n", long.as_str()] {
        assert_eq!(
            stored(Some(password), password, &plain).await,
            Verification::Mismatch,
            "{password:?}"
        );
    }
    assert_eq!(
        stored(Some("plain-pw"), "plain-pw", &plain).await,
        Verification::Match
    );

    let before = refusal_counts();
    let refused = [
        ("", "empty"),
        ("!8DQbiNBfx6GiTGPIvht30vynAdZZ4zuuFpltOEu5", "unusable"),
        ("hunter2-in-clear", "unknown_format"),
        ("{SSHA}abcdefgh", "unknown_format"),
        ("pqGxK1tZOgZTY", "weak_format_refused"),
        (
            "md5$GSPlRPNsNMEITg2NccmFeo$0c1375f81482a897bce67d012b12d685",
            "weak_format_refused",
        ),
        ("$2b$10$tooshort", "malformed"),
    ];
    for (hash, _) in refused {
        let result = stored(Some(hash), hash, &strict).await;
        assert!(
            matches!(result, Verification::Refused(_)),
            "{hash:?}: {result:?}"
        );
        assert!(
            matches!(result.refusal(), Some(Outcome::Rejected)),
            "{hash:?}"
        );
    }
    let after = refusal_counts();
    for (_, reason) in refused {
        let count =
            |counts: &[(&str, u64)]| counts.iter().find(|(r, _)| *r == reason).map(|(_, n)| *n);
        assert!(count(&after) > count(&before), "{reason} was not counted");
    }
    assert!(Verification::Match.refusal().is_none());
    assert!(matches!(
        Verification::Mismatch.refusal(),
        Some(Outcome::Rejected)
    ));
    assert!(matches!(
        Verification::UnknownUser.refusal(),
        Some(Outcome::NotFound)
    ));
    assert!(matches!(
        Verification::Unavailable(HashError::Busy).refusal(),
        Some(Outcome::Unavailable(e)) if e.is_busy()
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_users_and_refused_hashes_cost_a_wrong_password() {
    let strict = VerifyPolicy::STRICT;
    let time = async |stored: Option<&str>| {
        let started = Instant::now();
        let _ = verify_stored(
            account("timed", stored, BCRYPT_10),
            "guess",
            HashFormat::Auto,
            &strict,
        )
        .await;
        started.elapsed()
    };
    let median = |mut times: Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    for (what, stored) in [
        ("unknown user", None),
        ("plaintext row", Some("hunter2-in-clear")),
        ("unusable", Some("!")),
        ("empty", Some("")),
    ] {
        // Interleaved, so that load from other tests weighs on both sides alike.
        let (mut wrong, mut took) = (Vec::new(), Vec::new());
        for _ in 0..5 {
            wrong.push(time(Some(BCRYPT_10)).await);
            took.push(time(stored).await);
        }
        let (wrong, took) = (median(wrong), median(took));
        assert!(wrong > Duration::from_millis(5), "{wrong:?}");
        assert!(
            took * 10 > wrong,
            "{what} {took:?} vs wrong password {wrong:?}"
        );
    }
}
