//! A minimal reverse proxy on Cloudflare's pingora, for `bench/run.sh` and `bench/instructions.sh`
//! only (issue 16 item 1): it answers "does a well-kept Rust HTTP/1 proxy stack on tokio reach
//! nginx `proxy_pass`'s rate and instruction count on this bench?", which bounds what an HTTP/1.1
//! fast path inside the gateway could gain. It does the least a header-trusting gateway does and
//! nothing more: every request goes to the one upstream given on the command line over pingora's
//! keep-alive pool, with any incoming `X-Remote-User` replaced by `X-Remote-User: bench`. No
//! authentication, no TLS, no access log (like the bench's nginx), one worker thread (like nginx's
//! single worker), and the gateway's allocator (mimalloc), so what differs is the HTTP stack.
//!
//!     pingora-bench-proxy LISTEN_ADDR UPSTREAM_ADDR      # e.g. 127.0.0.1:8080 127.0.0.1:8081
//!     PINGORA_WORK_STEALING=0 pingora-bench-proxy ...   # pingora's no-steal runtime instead

use std::net::SocketAddr;
use std::process::ExitCode;

use async_trait::async_trait;
use pingora::http::RequestHeader;
use pingora::prelude::{HttpPeer, ProxyHttp, Result, Session, http_proxy_service};
use pingora::server::Server;
use pingora::server::configuration::ServerConf;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Proxy {
    upstream: SocketAddr,
}

#[async_trait]
impl ProxyHttp for Proxy {
    type CTX = ();

    fn new_ctx(&self) -> Self::CTX {}

    async fn upstream_peer(&self, _: &mut Session, _: &mut Self::CTX) -> Result<Box<HttpPeer>> {
        // Plain HTTP: no TLS, no SNI. Connections to the same peer are reused from the pool.
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }

    async fn upstream_request_filter(
        &self,
        _: &mut Session,
        upstream_request: &mut RequestHeader,
        _: &mut Self::CTX,
    ) -> Result<()> {
        // `insert_header` drops every value the client sent under this name.
        upstream_request.insert_header("X-Remote-User", "bench")
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (listen, upstream) = match args.as_slice() {
        [_, listen, upstream] => match upstream.parse::<SocketAddr>() {
            Ok(upstream) => (listen.clone(), upstream),
            Err(e) => {
                eprintln!("pingora-bench-proxy: upstream {upstream:?}: {e}");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("usage: pingora-bench-proxy LISTEN_ADDR UPSTREAM_ADDR");
            return ExitCode::from(2);
        }
    };

    let conf = ServerConf {
        threads: 1,
        // pingora's default: a multi-thread tokio runtime (here of one worker), like the gateway's.
        // PINGORA_WORK_STEALING=0 runs pingora's own single-threaded runtimes instead.
        work_stealing: std::env::var_os("PINGORA_WORK_STEALING").is_none_or(|v| v != "0"),
        // bench/run.sh stops it with SIGTERM (pingora's graceful shutdown): do not linger.
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut proxy = http_proxy_service(&server.configuration, Proxy { upstream });
    proxy.add_tcp(&listen);
    server.add_service(proxy);
    server.run_forever()
}
