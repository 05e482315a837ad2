//! The one Redis connection factory (sessions, the cookie store's revocations, the lockout).

use std::path::Path;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::url::RedisUrl;

/// A connection manager for `url` that connects lazily and gives up quickly, so an unreachable
/// server turns into an error (fail closed) rather than a hung request. `rediss://` is Redis
/// over TLS (rustls), verified against `ca_file` (PEM) when given, else the system's roots; a
/// CA file with a plain `redis://` URL is an error rather than a silent plain-text connection.
/// Errors show the URL redacted.
pub fn lazy_manager(url: &RedisUrl, ca_file: Option<&Path>) -> Result<ConnectionManager, String> {
    let shown = url.redacted();
    let client = match ca_file {
        None => ::redis::Client::open(url.as_str()).map_err(|e| format!("`{shown}`: {e}"))?,
        Some(_) if !url.is_tls() => {
            return Err(format!(
                "`{shown}`: a Redis CA file needs a `rediss://` (TLS) URL"
            ));
        }
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| format!("Redis CA file `{}`: {e}", path.display()))?;
            ::redis::Client::build_with_tls(
                url.as_str(),
                ::redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                },
            )
            .map_err(|e| format!("`{shown}` with CA file `{}`: {e}", path.display()))?
        }
    };
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(200));
    ConnectionManager::new_lazy_with_config(client, config).map_err(|e| format!("`{shown}`: {e}"))
}
