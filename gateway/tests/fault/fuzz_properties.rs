//! The fuzz targets' bodies (`gateway::__fuzz`, also run by libFuzzer from `fuzz/`) under
//! `cargo test`: every seed of `fuzz/corpus/<target>/`, then random inputs from proptest. This is
//! the always-on fallback of `scripts/fuzz.sh`: no coverage guidance, but the same invariants.

use proptest::prelude::*;

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out.sort();
    out
}

macro_rules! target {
    ($name:ident, $strategy:expr) => {
        mod $name {
            use super::*;

            #[test]
            fn seeds_hold_the_invariants() {
                for seed in seeds(stringify!($name)) {
                    gateway::__fuzz::$name(&seed);
                }
            }

            proptest! {
                #![proptest_config(ProptestConfig::with_cases(512))]
                #[test]
                fn random_inputs_hold_the_invariants(data in $strategy) {
                    gateway::__fuzz::$name(&data);
                }
            }
        }
    };
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..256)
}

/// Strings built from the characters the parser cares about.
fn text(alphabet: &'static str) -> impl Strategy<Value = Vec<u8>> {
    proptest::string::string_regex(alphabet)
        .unwrap()
        .prop_map(String::into_bytes)
}

target!(
    normalize_path,
    prop_oneof![
        bytes(),
        text("/([a-z.]|%2[eEfF]|%[0-9A-Fa-f]{2}|/|\\.\\.?|;|\\\\){0,24}")
    ]
);
target!(
    validate_next,
    prop_oneof![
        bytes(),
        text(
            "(/|//|https?://|HTTP://|javascript:)?([a-z.@:\\\\]|%[0-9A-Fa-f]{2}|gw\\.example\\.org|app\\.example\\.org|[\t\n])*"
        )
    ]
);
target!(
    basic_header,
    prop_oneof![
        bytes(),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(|raw| {
            use base64::Engine;
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            )
            .into_bytes()
        })
    ]
);
target!(
    login_form,
    prop_oneof![
        bytes(),
        text("((username|password|csrf|next|x)=([a-z+]|%[0-9A-Fa-f]{2})*&?){0,6}")
    ]
);
target!(session_cookie, bytes());
target!(
    config_load,
    prop_oneof![
        bytes(),
        text("([a-z_]+: ?([a-z0-9\"/:.]*|\\[|\\{|&a|\\*a|-)\n {0,4})*")
    ]
);

/// Response heads and bodies built from the pieces framing depends on: status lines (interim,
/// bodiless, HTTP/1.0), `Content-Length` and `Transfer-Encoding` variants, chunk-size lines with
/// extensions and stray line feeds, trailers, bytes after the end.
fn upstream_response() -> impl Strategy<Value = Vec<u8>> {
    let status = prop_oneof![
        Just("HTTP/1.1 200 OK\r\n"),
        Just("HTTP/1.1 204 No Content\r\n"),
        Just("HTTP/1.1 304 Not Modified\r\n"),
        Just("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"),
        Just("HTTP/1.0 200 OK\r\n"),
        Just("HTTP/1.1 404 Gone Fishing\r\n"),
        Just("HTTP/1.1 200 \r\n"),
    ];
    let header = prop_oneof![
        Just("Content-Length: 5\r\n"),
        Just("Content-Length: 3\r\n"),
        Just("Content-Length: 5, 5\r\n"),
        Just("Content-Length: +5\r\n"),
        Just("Content-Length: \r\n"),
        Just("Transfer-Encoding: chunked\r\n"),
        Just("Transfer-Encoding: gzip, chunked\r\n"),
        Just("Transfer-Encoding: chunked, gzip\r\n"),
        Just("Transfer-Encoding: CHUNKED\r\n"),
        Just("Connection: close\r\n"),
        Just("Connection: keep-alive\r\n"),
        Just("X-A: b\r\n"),
        Just(" folded\r\n"),
        Just("Bad Name: x\r\n"),
    ];
    let body = prop_oneof![
        Just("hello"),
        Just("5\r\nhello\r\n0\r\n\r\n"),
        Just("5;ext=1\r\nhello\r\n0\r\nT: 1\r\n\r\n"),
        Just("5\nhello\r\n0\r\n\r\n"),
        Just("\r\nhello\r\n0\r\n\r\n"),
        Just("5;a\nb\r\nhello\r\n0\r\n\r\n"),
        Just("3\r\nhelloXX0\r\n\r\n"),
        Just("0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"),
        Just("5\r\nhello\r\n0\r\nno colon\r\n\r\n"),
        Just("5\r\nhello\r\n0\r\nx y: 1\r\n\r\n"),
        Just(""),
    ];
    (
        any::<u8>(),
        status,
        proptest::collection::vec(header, 0..4),
        body,
    )
        .prop_map(|(flags, status, headers, body)| {
            let mut out = vec![flags];
            out.extend_from_slice(status.as_bytes());
            for h in headers {
                out.extend_from_slice(h.as_bytes());
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(body.as_bytes());
            out
        })
}
target!(upstream_response, prop_oneof![bytes(), upstream_response()]);

/// Request heads built from the pieces the fast path decides on: request lines (methods,
/// targets, versions), framing and negotiation headers in any case, `Connection` tokens,
/// odd bytes in values, bare line feeds, pipelined followers.
fn client_request() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        Just("GET / HTTP/1.1\r\n"),
        Just("HEAD /a?b=c HTTP/1.1\r\n"),
        Just("DELETE /x%2F HTTP/1.1\r\n"),
        Just("CONNECT a:443 HTTP/1.1\r\n"),
        Just("GET * HTTP/1.1\r\n"),
        Just("GET http://h/ HTTP/1.1\r\n"),
        Just("GET / HTTP/1.0\r\n"),
        Just("GET / HTTP/2.0\r\n"),
        Just("G\u{e9}T / HTTP/1.1\r\n"),
        Just("GET  / HTTP/1.1\r\n"),
        Just("\r\nGET / HTTP/1.1\r\n"),
        Just("GET / HTTP/1.1\n"),
    ];
    let header = prop_oneof![
        Just("Host: gw.test\r\n"),
        Just("Connection: close\r\n"),
        Just("connection: Keep-Alive , CLOSE\r\n"),
        Just("Connection: keep-alive\r\n"),
        Just("Connection: upgrade\r\n"),
        Just("Upgrade: websocket\r\n"),
        Just("Content-Length: 0\r\n"),
        Just("content-length: 3\r\n"),
        Just("Transfer-Encoding: chunked\r\n"),
        Just("TE: trailers\r\n"),
        Just("Expect: 100-continue\r\n"),
        Just("X-Remote-User: admin\r\n"),
        Just("x-remote-user:\troot \r\n"),
        Just("X-Forwarded-For: 1.2.3.4\r\n"),
        Just("Cookie: authgate_session=abc; other=1\r\n"),
        Just(" folded\r\n"),
        Just("Bad Name: x\r\n"),
        Just("X: caf\u{e9}\r\n"),
        Just("X-Empty:\r\n"),
        Just("x-lf: y\n"),
    ];
    let after = prop_oneof![
        Just(""),
        Just("abc"),
        Just("GET /next HTTP/1.1\r\nHost: a\r\n\r\n"),
        Just("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    ];
    (
        line,
        proptest::collection::vec(header, 0..6),
        any::<bool>(),
        after,
    )
        .prop_map(|(line, headers, complete, after)| {
            let mut out = line.as_bytes().to_vec();
            for h in headers {
                out.extend_from_slice(h.as_bytes());
            }
            if complete {
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(after.as_bytes());
            }
            out
        })
}
target!(client_request, prop_oneof![bytes(), client_request()]);

/// Responses built from the pieces a head's framing depends on: a flags byte (method, the
/// request's close, the body), a status byte, and header lines among framing, `Connection`,
/// `Trailer`, `Date` and ordinary ones.
fn client_response() -> impl Strategy<Value = Vec<u8>> {
    let header = prop_oneof![
        Just("content-length: 5"),
        Just("content-length: 0"),
        Just("content-length: 20000"),
        Just("content-length: x"),
        Just("transfer-encoding: chunked"),
        Just("transfer-encoding: gzip"),
        Just("connection: close"),
        Just("connection: keep-alive"),
        Just("trailer: x-t"),
        Just("date: Mon, 01 Jan 2024 00:00:00 GMT"),
        Just("set-cookie: a=1"),
        Just("content-type: text/plain"),
    ];
    (
        any::<u8>(),
        any::<u8>(),
        proptest::collection::vec(header, 0..4),
    )
        .prop_map(|(flags, status, headers)| {
            let mut out = vec![flags, status];
            out.extend_from_slice(headers.join("\n").as_bytes());
            out
        })
}
target!(client_response, prop_oneof![bytes(), client_response()]);
