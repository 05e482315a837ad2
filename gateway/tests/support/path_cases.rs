//! Request-target cases of the path attack suites (`attack::paths`, `attack::path_case`): who
//! sends the target, the status they must get and the path the upstream must see.

use super::{Harness, basic, raw};

/// Who sends a case (the default test users).
#[derive(Clone, Copy, Debug)]
pub enum Who {
    Anonymous,
    /// Authenticated, not in `admins`.
    Alice,
    /// In `admins`.
    Bob,
}

impl Who {
    /// The `Authorization` header line (with its CRLF) this sender adds, if any.
    pub fn header(self) -> String {
        match self {
            Who::Anonymous => String::new(),
            Who::Alice => format!("Authorization: {}\r\n", basic("alice", "alice-pw")),
            Who::Bob => format!("Authorization: {}\r\n", basic("bob", "bob-pw")),
        }
    }
}

/// (request target, who, expected status, path the upstream must see when forwarded).
pub type PathCase = (&'static str, Who, u16, Option<&'static str>);

/// Sends every case over raw TCP (`Host: gw.test`) and returns one line per case whose status,
/// forwarded path or number of forwarded requests is not the expected one.
pub async fn path_case_failures(h: &Harness, cases: &[PathCase]) -> Vec<String> {
    let mut failures = Vec::new();
    for (target, who, status, forwarded) in cases {
        h.upstream.clear();
        let req = format!(
            "GET {target} HTTP/1.1\r\nHost: gw.test\r\n{}Connection: close\r\n\r\n",
            who.header()
        );
        let ex = raw::send(h.addr, &req).await;
        let seen = h.upstream.seen();
        let got = ex.status();
        let path = seen.first().map(|r| r.path.clone());
        if got != *status || path.as_deref() != *forwarded || seen.len() > 1 {
            failures.push(format!(
                "{target} as {who:?}: got {got} forwarded {path:?} (n={}), want {status} {forwarded:?}",
                seen.len()
            ));
        }
    }
    failures
}
