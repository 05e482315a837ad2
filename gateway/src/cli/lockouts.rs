//! `authgate lockouts list|clear USER`: the brute-force lockouts in force.
//!
//! Where they live decides how: a Redis store (`protection.store: redis://...`) is read and
//! cleared directly, gateway running or not. The memory store lives inside the gateway process,
//! so the command asks the running gateway through its admin listener (`admin.listen`, reached
//! on the loopback address), which also audits each lockout it clears; without an admin
//! listener it says so.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use clap::Subcommand;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::CliError;
use super::check::INVALID_CONFIG;
use crate::config::Parsed;
use crate::protection::{LockRecord, Lockout};

/// What to do with the lockouts.
#[derive(Debug, Clone, Subcommand)]
pub enum LockoutsAction {
    /// List the lockouts in force: user (`*` for a whole client), client, time left.
    List,
    /// End the lockouts of USER, from every client (whole-client lockouts stay).
    Clear {
        /// The username (any spelling of it: it is canonicalized as the counters are).
        user: String,
    },
}

/// How long a request to the admin listener may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Runs `action` against the lockout store named by the config at `path`.
pub(crate) fn lockouts(
    path: &Path,
    action: LockoutsAction,
    out: &mut dyn Write,
) -> Result<u8, CliError> {
    let loaded = match crate::config::load(path) {
        Ok(loaded) => loaded,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(INVALID_CONFIG);
        }
    };
    let runtime = super::services::runtime()?;
    let message = |e: &dyn std::fmt::Display| CliError::Message(e.to_string());
    let store = runtime
        .block_on(async { Lockout::from_config(&loaded.config.protection) })
        .map_err(|e| message(&e))?;
    let admin = loaded.config.admin.as_ref().map(|a| &a.listen.value);
    let records = if store.is_memory() {
        let Some(admin) = admin else {
            return Err(CliError::Message(
                "the memory lockout store lives in the gateway process: set `admin.listen` so \
                 `authgate lockouts` can ask the running gateway (a restart also clears every \
                 lockout), or use a Redis store"
                    .into(),
            ));
        };
        let addr = loopback(admin)?;
        runtime.block_on(ask_gateway(addr, &action))?
    } else {
        runtime
            .block_on(async {
                match &action {
                    LockoutsAction::List => store.list().await,
                    LockoutsAction::Clear { user } => store.clear_user(user).await,
                }
            })
            .map_err(|e| message(&e))?
    };
    match action {
        LockoutsAction::List if records.is_empty() => writeln!(out, "no lockouts in force")?,
        LockoutsAction::List => {
            let rows: Vec<[String; 3]> = records
                .iter()
                .map(|r| {
                    [
                        r.user.clone().unwrap_or_else(|| "*".into()),
                        r.client.clone(),
                        humantime::format_duration(Duration::from_secs(r.remaining_secs))
                            .to_string(),
                    ]
                })
                .collect();
            super::table::write_table(out, ["USER", "CLIENT", "REMAINING"], &rows)?;
        }
        LockoutsAction::Clear { user } if records.is_empty() => {
            writeln!(out, "no lockout of `{user}` in force")?;
        }
        LockoutsAction::Clear { .. } => {
            for r in &records {
                writeln!(
                    out,
                    "cleared the lockout of `{}` from {}",
                    r.user.as_deref().unwrap_or("*"),
                    r.client
                )?;
            }
        }
    }
    Ok(0)
}

/// `admin.listen` as reached from this host: an unspecified address (`0.0.0.0`, `::`) means
/// the loopback one.
fn loopback(listen: &Parsed<SocketAddr>) -> Result<SocketAddr, CliError> {
    let mut addr: SocketAddr = *listen.get().ok_or_else(|| {
        CliError::Message(format!("admin.listen `{listen}` is not an IP:PORT address"))
    })?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    Ok(addr)
}

/// Lists or clears through the running gateway's admin listener at `addr`.
async fn ask_gateway(
    addr: SocketAddr,
    action: &LockoutsAction,
) -> Result<Vec<LockRecord>, CliError> {
    let (method, path, body) = match action {
        LockoutsAction::List => ("GET", "/lockouts", String::new()),
        LockoutsAction::Clear { user } => (
            "POST",
            "/lockouts/clear",
            serde_json::json!({ "user": user }).to_string(),
        ),
    };
    let request = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| CliError::Message(e.to_string()))?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let unreachable = |e: &dyn std::fmt::Display| {
        CliError::Message(format!(
            "cannot reach the gateway's admin listener on {addr} (the memory lockout store \
             lives in the gateway process: is it running?): {e}"
        ))
    };
    let response = tokio::time::timeout(TIMEOUT, client.request(request))
        .await
        .map_err(|_| unreachable(&"no answer"))?
        .map_err(|e| unreachable(&e))?;
    let status = response.status();
    let bytes = tokio::time::timeout(TIMEOUT, response.into_body().collect())
        .await
        .map_err(|_| unreachable(&"no answer"))?
        .map_err(|e| unreachable(&e))?
        .to_bytes();
    if !status.is_success() {
        return Err(CliError::Message(format!(
            "the gateway on {addr} answered {status}: {}",
            String::from_utf8_lossy(&bytes).trim()
        )));
    }
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| CliError::Message(format!("unreadable answer from {addr}: {e}")))?;
    let records = match action {
        LockoutsAction::List => value,
        LockoutsAction::Clear { .. } => value["cleared"].clone(),
    };
    serde_json::from_value(records)
        .map_err(|e| CliError::Message(format!("unreadable answer from {addr}: {e}")))
}
