//! `Chain::authenticate` over in-memory backends: what the chain itself costs per request
//! (policy walk, per-entry timeout, trace), without any password hashing.
//!
//! Run: `cargo bench -p auth-core --bench chain`.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use auth_core::{
    Backend, BackendError, Chain, ChainEntry, ChainOutcome, Context, Credentials, Outcome, User,
    async_trait,
};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

/// Users and plain passwords in a map: the cheapest backend there is, so the numbers are the
/// chain's own overhead.
struct MemoryBackend {
    users: HashMap<String, String>,
}

impl MemoryBackend {
    fn with_user(username: &str, password: &str) -> Self {
        MemoryBackend {
            users: HashMap::from([(username.to_owned(), password.to_owned())]),
        }
    }
}

#[async_trait]
impl Backend for MemoryBackend {
    async fn authenticate(&self, credentials: &Credentials, _context: &Context) -> Outcome {
        let Credentials::Password { username, password } = credentials else {
            return Outcome::NotFound;
        };
        match self.users.get(username) {
            None => Outcome::NotFound,
            Some(stored) if stored == password => Outcome::Authenticated(User::new(username)),
            Some(_) => Outcome::Rejected,
        }
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>, BackendError> {
        Ok(self.users.contains_key(id).then(|| User::new(id)))
    }
}

/// `len` entries; only the last one knows `alice`, so a login walks the whole chain.
fn chain_of(len: usize) -> Chain {
    Chain::new(
        (0..len)
            .map(|i| {
                let user = if i + 1 == len { "alice" } else { "nobody" };
                ChainEntry::new(
                    format!("entry-{i}"),
                    Arc::new(MemoryBackend::with_user(user, "secret")),
                )
            })
            .collect(),
    )
}

fn authenticate(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let context = Context::default();
    let cases = [
        (
            "authenticated_by_last",
            Credentials::password("alice", "secret"),
        ),
        ("rejected_by_last", Credentials::password("alice", "wrong")),
        ("not_found", Credentials::password("mallory", "secret")),
    ];
    let mut group = c.benchmark_group("chain_authenticate");
    for len in [1, 3, 8] {
        let chain = chain_of(len);
        for (case, credentials) in &cases {
            // A bench that measured the wrong path would be worse than none.
            let label = runtime
                .block_on(chain.authenticate(credentials, &context))
                .outcome
                .label();
            let expected = match *case {
                "authenticated_by_last" => "authenticated",
                "rejected_by_last" => "rejected",
                _ => "not_found",
            };
            assert_eq!(label, expected, "{case} over {len} entries");

            group.bench_with_input(BenchmarkId::new(*case, len), &chain, |b, chain| {
                b.to_async(&runtime).iter(|| async {
                    let result = chain.authenticate(black_box(credentials), &context).await;
                    black_box(matches!(result.outcome, ChainOutcome::Authenticated { .. }))
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, authenticate);
criterion_main!(benches);
