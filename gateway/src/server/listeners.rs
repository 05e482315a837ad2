//! The listening sockets of a gateway started from a config file (`server.listen`, TLS when
//! `server.tls` is set, and `admin.listen`), brought in line with each config version.
//!
//! Contract:
//! - [`Listeners::update`] first does everything that can fail: it reads the certificate and
//!   binds every new address. When one of these fails it changes nothing (the sockets it bound
//!   are closed) and returns the error;
//! - then it installs the new config (the caller's closure), the certificate, serves the new
//!   sockets, and shuts the removed ones down gracefully in the background (in-flight requests
//!   finish within `server.shutdown_grace`);
//! - a listener whose address is still configured is left alone: its socket and open
//!   connections are untouched; it follows `server.tls` for the connections it accepts next.
//!   Addresses are matched as written (`127.0.0.1:0` twice is two listeners).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rustls::sign::CertifiedKey;
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::task::TaskTracker;

use super::tls::{ServerTls, load_certified_key};
use super::{Running, ServerError, Tls};
use crate::config::Parsed;
use crate::runtime::Settings;
use crate::state::Gateway;

/// The listeners a config version asks for, with its certificate read and checked.
pub(crate) struct Wanted {
    listen: Vec<SocketAddr>,
    admin: Option<SocketAddr>,
    cert: Option<Arc<CertifiedKey>>,
}

impl Wanted {
    /// What `settings` asks for; relative certificate paths are resolved against `base_dir`.
    pub(crate) fn of(settings: &Settings, base_dir: &Path) -> Result<Wanted, ServerError> {
        let parse = |what: &str, addr: &Parsed<SocketAddr>| {
            addr.get().copied().ok_or_else(|| {
                ServerError::Config(format!("{what} `{addr}` is not an IP:PORT address"))
            })
        };
        let listen = settings
            .server
            .listen
            .to_vec()
            .into_iter()
            .map(|a| parse("server.listen", &a.value))
            .collect::<Result<Vec<_>, _>>()?;
        let admin = settings
            .admin_listen
            .as_ref()
            .map(|a| parse("admin.listen", a))
            .transpose()?;
        let cert = match &settings.server.tls {
            Some(t) => Some(load_certified_key(
                &base_dir.join(&t.cert.value),
                &base_dir.join(&t.key.value),
            )?),
            None => None,
        };
        Ok(Wanted {
            listen,
            admin,
            cert,
        })
    }
}

/// What happened to TLS in an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlsChange {
    /// Same certificate (or still plain HTTP).
    Unchanged,
    /// TLS was on and serves another certificate now.
    NewCertificate,
    /// Plain HTTP before, TLS now.
    Enabled,
    /// TLS before, plain HTTP now.
    Disabled,
}

impl std::fmt::Display for TlsChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsChange::Unchanged => "unchanged",
            TlsChange::NewCertificate => "new certificate",
            TlsChange::Enabled => "enabled",
            TlsChange::Disabled => "disabled",
        })
    }
}

/// What an update changed.
#[derive(Debug, Clone)]
pub(crate) struct Changes {
    /// Newly bound addresses (as bound), admin included.
    pub(crate) added: Vec<SocketAddr>,
    /// Addresses that stopped accepting (their connections drain), admin included.
    pub(crate) removed: Vec<SocketAddr>,
    /// The certificate.
    pub(crate) tls: TlsChange,
}

impl Changes {
    /// `+ADDR -ADDR ...`, or `unchanged`.
    pub(crate) fn listeners(&self) -> String {
        let all: Vec<String> = self
            .added
            .iter()
            .map(|a| format!("+{a}"))
            .chain(self.removed.iter().map(|a| format!("-{a}")))
            .collect();
        if all.is_empty() {
            "unchanged".into()
        } else {
            all.join(" ")
        }
    }
}

struct Listener {
    /// The address as configured (port 0 stays 0).
    configured: SocketAddr,
    running: Running,
}

#[derive(Default)]
struct State {
    main: Vec<Listener>,
    admin: Option<Listener>,
}

/// The listeners of one gateway.
pub(crate) struct Listeners {
    gw: Arc<Gateway>,
    tls: ServerTls,
    state: Mutex<State>,
    /// Removed listeners still draining their connections.
    draining: TaskTracker,
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listeners")
            .field("listening", &self.listening())
            .field("admin", &self.admin())
            .finish_non_exhaustive()
    }
}

enum Slot {
    Keep(usize),
    New(SocketAddr, Bound),
}

/// A socket bound and listening, not served yet.
pub(crate) struct Bound {
    pub(crate) listener: TcpListener,
    /// The bound address (the port chosen for port 0).
    pub(crate) addr: SocketAddr,
}

/// Binds and listens on `addr` (`what` names it in the error). Must be called within a Tokio
/// runtime.
pub(crate) fn bind(addr: SocketAddr, what: &str) -> Result<Bound, ServerError> {
    let io = |source| ServerError::Io {
        context: format!("binding {what}{addr}"),
        source,
    };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(io)?;
    // As `TcpListener::bind` does: a restart may rebind a port with connections in TIME_WAIT.
    socket.set_reuseaddr(true).map_err(io)?;
    socket.bind(addr).map_err(io)?;
    let listener = socket.listen(1024).map_err(io)?;
    let addr = listener.local_addr().map_err(io)?;
    Ok(Bound { listener, addr })
}

impl Listeners {
    /// No listeners yet for `gw`; [`update`](Self::update) binds them.
    pub(crate) fn new(gw: Arc<Gateway>) -> Result<Listeners, ServerError> {
        Ok(Listeners {
            gw,
            tls: ServerTls::new(None)?,
            state: Mutex::new(State::default()),
            draining: TaskTracker::new(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The bound `server.listen` addresses, in config order.
    pub(crate) fn listening(&self) -> Vec<SocketAddr> {
        self.state().main.iter().map(|l| l.running.addr).collect()
    }

    /// The bound admin address.
    pub(crate) fn admin(&self) -> Option<SocketAddr> {
        self.state().admin.as_ref().map(|l| l.running.addr)
    }

    /// Brings the listeners in line with `wanted`, calling `install` once nothing can fail
    /// any more (see the module's contract). Must be called within a Tokio runtime.
    pub(crate) fn update(
        &self,
        wanted: Wanted,
        install: impl FnOnce(),
    ) -> Result<Changes, ServerError> {
        let mut state = self.state();
        let mut claimed = vec![false; state.main.len()];
        let mut plan = Vec::with_capacity(wanted.listen.len());
        for addr in &wanted.listen {
            let kept = state
                .main
                .iter()
                .enumerate()
                .position(|(i, l)| !claimed[i] && l.configured == *addr);
            match kept {
                Some(i) => {
                    claimed[i] = true;
                    plan.push(Slot::Keep(i));
                }
                None => plan.push(Slot::New(*addr, bind(*addr, "")?)),
            }
        }
        let admin_plan = match (wanted.admin, &state.admin) {
            (Some(a), Some(l)) if l.configured == a => None,
            (Some(a), _) => Some(Some((a, bind(a, "admin ")?))),
            (None, Some(_)) => Some(None),
            (None, None) => None,
        };

        // Nothing below fails.
        install();
        let tls = match (self.tls.current(), &wanted.cert) {
            (None, None) => TlsChange::Unchanged,
            (None, Some(_)) => TlsChange::Enabled,
            (Some(_), None) => TlsChange::Disabled,
            (Some(old), Some(new)) if old.cert == new.cert => TlsChange::Unchanged,
            (Some(_), Some(_)) => TlsChange::NewCertificate,
        };
        self.tls.set(wanted.cert);
        let tls_on = self.tls.acceptor().is_some();
        let mut changes = Changes {
            added: Vec::new(),
            removed: Vec::new(),
            tls,
        };
        let mut old: Vec<Option<Listener>> = std::mem::take(&mut state.main)
            .into_iter()
            .map(Some)
            .collect();
        for slot in plan {
            match slot {
                Slot::Keep(i) => {
                    if let Some(l) = old.get_mut(i).and_then(Option::take) {
                        state.main.push(l);
                    }
                }
                Slot::New(configured, bound) => {
                    let running = Running::serve(
                        self.gw.clone(),
                        bound.listener,
                        bound.addr,
                        Tls::Live(self.tls.clone()),
                    );
                    tracing::info!(addr = %running.addr, tls = tls_on, "listening");
                    changes.added.push(running.addr);
                    state.main.push(Listener {
                        configured,
                        running,
                    });
                }
            }
        }
        let mut removed: Vec<Listener> = old.into_iter().flatten().collect();
        if let Some(admin) = admin_plan {
            removed.extend(state.admin.take());
            if let Some((configured, bound)) = admin {
                let running = Running::serve_admin(self.gw.clone(), bound.listener, bound.addr);
                tracing::info!(addr = %running.addr, "admin listening");
                changes.added.push(running.addr);
                state.admin = Some(Listener {
                    configured,
                    running,
                });
            }
        }
        for l in removed {
            tracing::info!(addr = %l.running.addr, "no longer listening; open connections drain");
            changes.removed.push(l.running.addr);
            self.draining.spawn(l.running.shutdown());
        }
        Ok(changes)
    }

    /// Stops accepting everywhere and waits for open connections to finish (within
    /// `server.shutdown_grace`), those of listeners removed earlier included.
    pub(crate) async fn stop(&self) {
        let state = std::mem::take(&mut *self.state());
        for l in state.main.into_iter().chain(state.admin) {
            self.draining.spawn(l.running.shutdown());
        }
        self.draining.close();
        self.draining.wait().await;
    }
}
