//! TLS for the listeners: one rustls `ServerConfig` per process whose certificate is read from
//! a swappable cell at each handshake, so a reload can rotate the certificate (or turn TLS on
//! or off) without touching the listening sockets.
//!
//! Contract:
//! - a certificate and key are checked together when loaded (PEM parses, the chain is not
//!   empty, the key is usable and matches the end-entity certificate); a pair that fails is
//!   never installed, so the one serving stays;
//! - new handshakes get the certificate installed last; connections already open keep the one
//!   they negotiated;
//! - with no certificate installed, a listener serves plain HTTP to the connections it accepts
//!   from then on.

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

use super::ServerError;

/// Reads the PEM certificate chain `cert` and private key `key` into a pair ready to serve.
pub(crate) fn load_certified_key(
    cert: &Path,
    key: &Path,
) -> Result<Arc<CertifiedKey>, ServerError> {
    let io = |what: &Path| {
        let what = what.display().to_string();
        move |source| ServerError::Io {
            context: format!("reading {what}"),
            source,
        }
    };
    let cert_pem = std::fs::read(cert).map_err(io(cert))?;
    let key_pem = std::fs::read(key).map_err(io(key))?;
    let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ServerError::Tls(format!("{}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(ServerError::Tls(format!(
            "{}: no certificate found",
            cert.display()
        )));
    }
    let private = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| ServerError::Tls(format!("{}: {e}", key.display())))?
        .ok_or_else(|| ServerError::Tls(format!("{}: no private key found", key.display())))?;
    CertifiedKey::from_der(certs, private, &provider())
        .map(Arc::new)
        .map_err(|e| ServerError::Tls(format!("{} with {}: {e}", cert.display(), key.display())))
}

fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The cell the handshakes read their certificate from.
#[derive(Debug, Default)]
struct CurrentCert(ArcSwapOption<CertifiedKey>);

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.load_full()
    }
}

/// The listeners' TLS: the certificate new connections get, swapped on reload. Cheap to share.
#[derive(Clone)]
pub(crate) struct ServerTls {
    current: Arc<CurrentCert>,
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("enabled", &self.current.0.load().is_some())
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// TLS serving `cert` (none: plain HTTP until one is [`set`](Self::set)), offering h2 and
    /// http/1.1 by ALPN.
    pub(crate) fn new(cert: Option<Arc<CertifiedKey>>) -> Result<ServerTls, ServerError> {
        let current = Arc::new(CurrentCert(ArcSwapOption::new(cert)));
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
            .with_safe_default_protocol_versions()
            .map_err(ServerError::TlsConfig)?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(ServerTls {
            current,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// Makes `cert` the certificate of new handshakes; `None` turns TLS off for connections
    /// accepted from now on.
    pub(crate) fn set(&self, cert: Option<Arc<CertifiedKey>>) {
        self.current.0.store(cert);
    }

    /// The certificate served now, if any.
    pub(crate) fn current(&self) -> Option<Arc<CertifiedKey>> {
        self.current.0.load_full()
    }

    /// The acceptor for a connection accepted now: `None` when TLS is off.
    pub(crate) fn acceptor(&self) -> Option<TlsAcceptor> {
        self.current
            .0
            .load()
            .is_some()
            .then(|| self.acceptor.clone())
    }
}
