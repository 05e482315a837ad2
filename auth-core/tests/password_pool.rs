//! The hashing pool: bounded, and `Busy` beyond its queue. Its own test binary, because the pool
//! is configured once per process.

use std::time::{Duration, Instant};

use auth_core::password::{
    HashError, HashFormat, PoolConfig, VerifyPolicy, configure_pool, dummy_verify, verify_blocking,
};

/// bcrypt at cost 10 of "correct horse battery", made by `htpasswd -nbB -C 10`.
const BCRYPT_10: &str = "$2y$10$";

fn bcrypt_vector() -> (String, String) {
    for line in include_str!("fixtures/hashes/vectors.jsonl").lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("vector");
        let hash = v["hash"].as_str().expect("hash");
        if hash.starts_with(BCRYPT_10) {
            return (
                hash.to_string(),
                v["password"].as_str().expect("password").to_string(),
            );
        }
    }
    panic!("no bcrypt cost-10 vector");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_pool_answers_busy_and_recovers() {
    configure_pool(PoolConfig {
        workers: 1,
        max_queued: 1,
    })
    .expect("first configuration");
    assert!(configure_pool(PoolConfig::default()).is_err(), "only once");

    let (hash, password) = bcrypt_vector();
    let policy = VerifyPolicy::STRICT;
    let check = || verify_blocking(&hash, &password, HashFormat::Auto, &policy);
    // One runs, one waits, the third is refused at once.
    let (a, b, c) = tokio::join!(check(), check(), check());
    assert_eq!(a, Ok(true));
    assert_eq!(b, Ok(true));
    assert_eq!(c, Err(HashError::Busy));
    assert!(c.unwrap_err().is_busy());

    // Capacity comes back once the work is done.
    assert_eq!(check().await, Ok(true));

    // The unknown-user path spends about the time of a real check, and reports Busy too.
    let started = Instant::now();
    check().await.expect("check");
    let real = started.elapsed();
    let started = Instant::now();
    dummy_verify(&hash).await.expect("dummy");
    let dummy = started.elapsed();
    assert!(
        dummy * 5 > real && dummy < real * 5 + Duration::from_millis(100),
        "dummy {dummy:?} vs real {real:?}"
    );
    let (x, y, z) = tokio::join!(
        dummy_verify(&hash),
        dummy_verify(&hash),
        dummy_verify(&hash)
    );
    assert_eq!((x, y), (Ok(()), Ok(())));
    assert_eq!(z, Err(HashError::Busy));
}
