//! Allocation budget of the request hot path: "nothing in the request hot path allocates more
//! than it must".
//!
//! The gateway runs in-process on one dedicated thread (a current-thread tokio runtime), so its
//! listener, the connection task, every phase of the request path and the upstream pool's
//! connection task all run there. A counting global allocator counts the heap allocations
//! (`alloc`, `alloc_zeroed`, `realloc`) made on that thread only; the client (blocking
//! `std::net`), the upstream (a plain `std` thread) and the test itself are not counted.
//!
//! Each case sends 200 warm-up requests on one keep-alive connection, then 3 rounds of 1000,
//! and takes the round with the fewest allocations per request (a one-off allocation, such as
//! a map growing, lands in one round, not in all three). Something done once a second on the
//! gateway's thread, though, lands in every round that lasts a second or more, as rounds do on
//! a slow or busy machine: the cached `date` header allocated its text once a second until
//! 2026-12-08, which showed as 18.001 against a budget of 18 in CI (reproduced here with the
//! cores kept busy). The check stays exact, figures print to three decimals, and a fraction
//! over the budget points at such a periodic allocation rather than a per-request one.
//!
//! The workspace forbids `unsafe_code`, which rules out an `unsafe impl GlobalAlloc` here: the
//! allocator is `tracking_allocator::Allocator<System>`, whose safe `AllocationTracker` hook is
//! called once per `alloc`, `alloc_zeroed` and `realloc` (it implements neither of the latter
//! two itself, so `GlobalAlloc`'s defaults route both through `alloc`) on the allocating thread,
//! where a thread-local flag says whether to count.
//!
//! The figures are for a debug build with no `tracing` subscriber installed (the access log line
//! is then skipped), as `cargo test` runs it.
//!
//! To see where the allocations come from: `ALLOC_BUDGET_TRACE=20 cargo test -p gateway --test
//! alloc_budget -- --nocapture` sends 20 more requests per case after the counted rounds,
//! captures a backtrace at each of their allocations and prints the allocation sites (the
//! first frames outside the allocator and the standard library), most frequent first.

mod support;

use std::alloc::System;
use std::backtrace::Backtrace;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use gateway::__test::Metrics;
use gateway::__test::{Gateway, Running};
use tracking_allocator::{AllocationGroupId, AllocationRegistry, AllocationTracker, Allocator};

// The budgets are the counts measured on 2026-12-07 (night), exactly: 7 / 15 / 18. They were
// 21 / 50 / 49 before the request path stopped copying the session's user, the Host and the
// forwarding headers, 10 / 18 / 21 with the common upstream exchange (`request/upstream_h1.rs`),
// 9 / 17 / 20 once hyper's per-request header-read timer was replaced by the connection's
// watchdog, and two less each since the client side's fast path (`server/h1.rs`) reads the
// request head instead of hyper's server. What is left (`ALLOC_BUDGET_TRACE=1` lists it),
// public route: 4 for the two header maps (the request's, sized once by `h1::parse` with room
// for the forwarding headers, and the response's, sized once by `upstream_h1::parse_head`), the
// boxed response body, the normalized path and the request's own future (boxed per request so
// that idle connections do not keep it); then one per identity header value and the session
// lookup's copies, and for Basic the decoded credentials.

/// Allocations per request, on the gateway's thread, for `GET` on a `public` route: sanitize,
/// route, forward over a pooled upstream connection, stream the 2-byte response back.
const PUBLIC_BUDGET: f64 = 7.0;
/// The same on an `authenticated` route with a session cookie (memory store): as public, plus
/// reading the cookie, verifying it, the store lookup and the identity headers.
const SESSION_BUDGET: f64 = 15.0;
/// The same on an `authenticated` route with `Authorization: Basic` (the credential cache warm:
/// no backend call): as public, plus decoding the credentials, the lockout check, the cache
/// lookup and the identity headers.
const BASIC_BUDGET: f64 = 18.0;

/// Requests before counting starts (pool connection opened, caches and maps warm).
const WARMUP: usize = 200;
/// Requests per counted round.
const REQUESTS: usize = 1000;
/// Counted rounds per case; the lowest figure is the one checked.
const ROUNDS: usize = 3;
/// How long the gateway is left to finish a request's tail (dropping its state, returning the
/// pooled connection) before the counter is reset or read, so each round counts whole requests.
const SETTLE: Duration = Duration::from_millis(50);

#[global_allocator]
static ALLOCATOR: Allocator<System> = Allocator::system();

/// Allocations counted on threads whose [`COUNTED`] flag is set.
static ALLOCS: AtomicU64 = AtomicU64::new(0);

/// Whether counted allocations also capture a backtrace into [`TRACES`] (`ALLOC_BUDGET_TRACE`).
static TRACE: AtomicBool = AtomicBool::new(false);
/// The size and backtrace of each traced allocation.
static TRACES: Mutex<Vec<(usize, Backtrace)>> = Mutex::new(Vec::new());

thread_local! {
    /// Whether allocations on this thread are counted (set on the gateway's thread only).
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

/// The allocator's hook: counts an allocation when the calling thread is counted. Allocations
/// made inside the hook are not reported to it (the allocator guards against reentrancy).
struct ThreadCounter;

impl AllocationTracker for ThreadCounter {
    fn allocated(&self, _addr: usize, size: usize, _wrapped: usize, _group: AllocationGroupId) {
        // `try_with`: an allocation during this thread's teardown, after the flag is gone, is
        // simply not counted.
        if COUNTED.try_with(Cell::get).unwrap_or(false) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            if TRACE.load(Ordering::Relaxed) {
                let trace = Backtrace::force_capture();
                TRACES.lock().unwrap().push((size, trace));
            }
        }
    }

    fn deallocated(
        &self,
        _addr: usize,
        _size: usize,
        _wrapped: usize,
        _source: AllocationGroupId,
        _current: AllocationGroupId,
    ) {
    }
}

/// Installs the hook (once per process).
fn install_counter() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        AllocationRegistry::set_global_tracker(ThreadCounter).expect("no other tracker is set");
        AllocationRegistry::enable_tracking();
    });
}

/// The gateway's config: a public prefix, everything else authenticated; memory sessions with
/// a fixed cookie name; Basic on (its default, spelled out).
const CONFIG: &str = r#"
server:
  public_url: "http://127.0.0.1:8080"
upstream:
  url: "http://{upstream}"
  connect_timeout: 2s
  timeout: 10s
session:
  store: memory
  secure: false
  cookie_name: gw_session
  secret: "0123456789abcdef0123456789abcdef-alloc"
login:
  basic_auth: true
routes:
  - match: { path: /public/ }
    access: public
  - match: { path: / }
    access: authenticated
"#;

const SESSION_COOKIE: &str = "gw_session";

// ---------------------------------------------------------------------------------------------
// The upstream: a plain std server (not counted), keep-alive, `200 ok` to every request.

/// What the upstream saw: the `X-Remote-User` value of each request, in order.
#[derive(Default)]
struct Seen {
    users: Mutex<Vec<Option<String>>>,
}

impl Seen {
    /// Takes what was seen since the last call.
    fn take(&self) -> Vec<Option<String>> {
        std::mem::take(&mut *self.users.lock().unwrap())
    }
}

struct Upstream {
    addr: SocketAddr,
    seen: Arc<Seen>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Upstream {
    fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Seen::default());
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let acceptor = thread::Builder::new()
            .name("upstream".into())
            .spawn({
                let (seen, stop, connections) = (seen.clone(), stop.clone(), connections.clone());
                move || {
                    for stream in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(stream) = stream else { continue };
                        let seen = seen.clone();
                        let handle = thread::spawn(move || serve_upstream(stream, &seen));
                        connections.lock().unwrap().push(handle);
                    }
                }
            })
            .unwrap();
        Upstream {
            addr,
            seen,
            stop,
            acceptor: Some(acceptor),
            connections,
        }
    }

    /// Stops accepting and joins every thread (connections end when the gateway closes them).
    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the acceptor up so it sees `stop`.
        let _ = TcpStream::connect(self.addr);
        if let Some(a) = self.acceptor.take() {
            a.join().unwrap();
        }
        for c in self.connections.lock().unwrap().drain(..) {
            c.join().unwrap();
        }
    }
}

/// Answers each request on one keep-alive connection until the peer closes it.
fn serve_upstream(stream: TcpStream, seen: &Seen) {
    // A connection the gateway never closes cannot hold `stop` forever.
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        // The request head: the request line, then headers up to the empty line.
        let mut user = None;
        let mut first = true;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" {
                break;
            }
            if first {
                first = false;
                continue;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("x-remote-user")
            {
                user = Some(value.trim().to_string());
            }
        }
        seen.users.lock().unwrap().push(user);
        if writer
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .is_err()
        {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The gateway, on its own (counted) thread.

struct GatewayThread {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl GatewayThread {
    fn start(upstream: SocketAddr) -> GatewayThread {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().to_path_buf();
        let (addr_tx, addr_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = thread::Builder::new()
            .name("gateway".into())
            .spawn(move || {
                COUNTED.with(|c| c.set(true));
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let config = support::parse_config(CONFIG, upstream);
                    let backend = support::default_backend();
                    let runtime = support::runtime(config, &backend, &data_dir, 1).await;
                    let gateway = Gateway::new(runtime, Arc::new(Metrics::new()));
                    let running = Running::start(gateway, "127.0.0.1:0".parse().unwrap(), None)
                        .await
                        .expect("gateway starts");
                    addr_tx.send(running.addr).unwrap();
                    let _ = stop_rx.await;
                    running.shutdown().await;
                });
                drop(rt);
                COUNTED.with(|c| c.set(false));
            })
            .unwrap();
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the gateway reports its address");
        GatewayThread {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// Shuts the gateway down (gracefully) and joins its thread.
    fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().expect("the gateway thread ends cleanly");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The client: blocking, one keep-alive connection, not counted.

struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    line: String,
    body: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Client {
            writer: stream.try_clone().unwrap(),
            reader: BufReader::new(stream),
            line: String::new(),
            body: Vec::new(),
        }
    }

    /// Sends `request` and reads its response whole; returns the status (the body is in
    /// `self.body`).
    fn send(&mut self, request: &[u8]) -> u16 {
        self.writer.write_all(request).unwrap();
        self.line.clear();
        self.reader.read_line(&mut self.line).unwrap();
        let status = self
            .line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("a status line: {:?}", self.line));
        let mut length = None;
        loop {
            self.line.clear();
            let n = self.reader.read_line(&mut self.line).unwrap();
            assert!(n > 0, "the connection closed inside a response head");
            if self.line == "\r\n" {
                break;
            }
            if let Some((name, value)) = self.line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = Some(value.trim().parse::<usize>().unwrap());
            }
        }
        let length = length.expect("every response here has a Content-Length");
        self.body.resize(length, 0);
        self.reader.read_exact(&mut self.body).unwrap();
        status
    }

    fn close(self) {
        let _ = self.writer.shutdown(Shutdown::Both);
    }
}

// ---------------------------------------------------------------------------------------------
// Measuring.

/// One case's figures: allocations per request in each round.
struct Measured {
    rounds: Vec<f64>,
}

impl Measured {
    fn best(&self) -> f64 {
        self.rounds.iter().copied().fold(f64::INFINITY, f64::min)
    }
}

/// Runs one case from a client thread: warm-up, then the counted rounds. Every response must be
/// `200 ok`, and the upstream must have seen every request with `user` as `X-Remote-User`.
fn measure(
    gateway: SocketAddr,
    upstream: &Upstream,
    request: String,
    user: Option<&str>,
) -> Measured {
    upstream.seen.take();
    let traced = traced_requests();
    let client = thread::Builder::new()
        .name("client".into())
        .spawn(move || {
            let request = request.into_bytes();
            let mut client = Client::connect(gateway);
            let check = |client: &mut Client| {
                let status = client.send(&request);
                assert_eq!(status, 200, "{:?}", String::from_utf8_lossy(&client.body));
                assert_eq!(client.body, b"ok");
            };
            for _ in 0..WARMUP {
                check(&mut client);
            }
            let mut rounds = Vec::new();
            for _ in 0..ROUNDS {
                thread::sleep(SETTLE);
                ALLOCS.store(0, Ordering::SeqCst);
                for _ in 0..REQUESTS {
                    check(&mut client);
                }
                thread::sleep(SETTLE);
                let counted = ALLOCS.load(Ordering::SeqCst);
                rounds.push(counted as f64 / REQUESTS as f64);
            }
            if traced > 0 {
                thread::sleep(SETTLE);
                TRACE.store(true, Ordering::SeqCst);
                for _ in 0..traced {
                    check(&mut client);
                }
                thread::sleep(SETTLE);
                TRACE.store(false, Ordering::SeqCst);
            }
            client.close();
            rounds
        })
        .unwrap();
    let rounds = client.join().expect("the client thread succeeds");
    let seen = upstream.seen.take();
    assert_eq!(
        seen.len(),
        WARMUP + ROUNDS * REQUESTS + traced,
        "the upstream saw every request"
    );
    let expected = user.map(str::to_string);
    assert!(
        seen.iter().all(|u| *u == expected),
        "every request reached the upstream with X-Remote-User {expected:?}; first: {:?}",
        seen.first()
    );
    Measured { rounds }
}

/// `ALLOC_BUDGET_TRACE`: how many requests per case to trace (0: none).
fn traced_requests() -> usize {
    std::env::var("ALLOC_BUDGET_TRACE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Prints the traced allocations of one case by site (its first frames outside the allocator
/// and the standard library), most frequent first.
fn print_sites(case: &str, requests: usize) {
    let traces = std::mem::take(&mut *TRACES.lock().unwrap());
    let outside = |frame: &&str| {
        ![
            "std::",
            "core::",
            "alloc::",
            "<std::",
            "<core::",
            "<alloc::",
            "<[",
            "<str",
            "<T as ",
            "__rust",
            "tracking_allocator",
            "<tracking_allocator",
            "alloc_budget::",
            "<alloc_budget::",
        ]
        .iter()
        .any(|p| frame.starts_with(p))
    };
    // site -> (allocations, bytes)
    let mut sites: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (size, trace) in &traces {
        let text = trace.to_string();
        // Frame lines read `  N: path::to::function`; `at file:line` lines follow them.
        let site = text
            .lines()
            .filter_map(|l| l.trim_start().split_once(": "))
            .filter(|(n, _)| n.bytes().all(|b| b.is_ascii_digit()))
            .map(|(_, f)| f.trim())
            .filter(outside)
            .take(4)
            .collect::<Vec<_>>()
            .join("  <-  ");
        let e = sites.entry(site).or_default();
        e.0 += 1;
        e.1 += size;
    }
    let mut sites: Vec<_> = sites.into_iter().collect();
    sites.sort_by(|a, b| b.1.0.cmp(&a.1.0).then_with(|| a.0.cmp(&b.0)));
    eprintln!(
        "alloc_budget: {case}: {} allocations in {requests} traced requests, by site:",
        traces.len()
    );
    for (site, (n, bytes)) in sites {
        eprintln!(
            "  {:5.1}/request {:6} B each  {site}",
            n as f64 / requests as f64,
            bytes / n
        );
    }
}

/// Logs in through the form (on a runtime of its own: not counted) and returns the session
/// cookie's value.
fn log_in(gateway: SocketAddr, user: &str, password: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = support::client();
        let url = |path: &str| format!("http://{gateway}{path}");
        let mut jar = support::Jar::default();
        let form = c.get(url("/_auth/login?next=/app/")).send().await.unwrap();
        assert_eq!(form.status(), 200);
        jar.absorb(&form);
        let html = form.text().await.unwrap();
        let csrf = support::hidden_field(&html, "csrf").expect("csrf field");
        let resp = c
            .post(url("/_auth/login"))
            .header("cookie", jar.header())
            .form(&[
                ("username", user),
                ("password", password),
                ("csrf", csrf.as_str()),
                ("next", "/app/"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303, "login as {user} succeeds");
        jar.absorb(&resp);
        jar.cookies
            .get(SESSION_COOKIE)
            .cloned()
            .expect("login sets the session cookie")
    })
}

fn request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\nAccept: */*\r\n{extra}\r\n"
    )
}

/// Checks the counter itself: allocations on an unflagged thread are not counted, those on a
/// flagged one are.
fn counter_self_check() {
    ALLOCS.store(0, Ordering::SeqCst);
    let boxes: Vec<Box<u64>> = (0..100)
        .map(|i| Box::new(std::hint::black_box(i)))
        .collect();
    drop(std::hint::black_box(boxes));
    assert_eq!(
        ALLOCS.load(Ordering::SeqCst),
        0,
        "an unflagged thread is not counted"
    );
    thread::spawn(|| {
        COUNTED.with(|c| c.set(true));
        for i in 0..100u64 {
            drop(std::hint::black_box(Box::new(i)));
        }
        COUNTED.with(|c| c.set(false));
    })
    .join()
    .unwrap();
    assert!(
        ALLOCS.load(Ordering::SeqCst) >= 100,
        "a flagged thread is counted: {}",
        ALLOCS.load(Ordering::SeqCst)
    );
}

#[test]
fn proxied_requests_stay_within_their_allocation_budget() {
    let started = Instant::now();
    install_counter();
    counter_self_check();

    let mut upstream = Upstream::start();
    let mut gateway = GatewayThread::start(upstream.addr);
    let session = log_in(gateway.addr, "alice", "alice-pw");

    let cases = [
        (
            "public route",
            request("/public/x", ""),
            None,
            PUBLIC_BUDGET,
        ),
        (
            "session cookie",
            request("/app/x", &format!("Cookie: {SESSION_COOKIE}={session}\r\n")),
            Some("alice"),
            SESSION_BUDGET,
        ),
        (
            "HTTP Basic",
            request(
                "/app/x",
                &format!("Authorization: {}\r\n", support::basic("alice", "alice-pw")),
            ),
            Some("alice"),
            BASIC_BUDGET,
        ),
    ];
    let mut results = Vec::new();
    for (name, req, user, budget) in cases {
        let m = measure(gateway.addr, &upstream, req, user);
        let rounds = m
            .rounds
            .iter()
            .map(|r| format!("{r:.3}"))
            .collect::<Vec<_>>()
            .join(", ");
        eprintln!(
            "alloc_budget: {name}: {:.3} allocations/request (rounds: {rounds}; budget {budget})",
            m.best()
        );
        results.push((name, m.best(), budget));
        if traced_requests() > 0 {
            print_sites(name, traced_requests());
        }
    }

    gateway.stop();
    upstream.stop();
    eprintln!("alloc_budget: took {:.1?}", started.elapsed());

    for (name, per_request, budget) in results {
        assert!(
            per_request > 0.0,
            "{name}: nothing was counted on the gateway's thread: the counter is not measuring"
        );
        assert!(
            per_request <= budget,
            "{name}: {per_request:.3} allocations per request, over the budget of {budget}{}",
            if per_request - budget < 0.5 {
                " (a fraction over: something allocating once in a while on the gateway's \
                 thread, such as once a second, rather than on every request)"
            } else {
                ""
            }
        );
    }
}
