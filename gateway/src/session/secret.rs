//! The session secret ([`resolve_secret`]: from the config or generated into `data_dir`) and
//! the keys derived from it, one per purpose.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
pub(super) use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use super::error::SessionError;
use super::record::SessionId;
use crate::config::model::SessionConfig;

type HmacSha256 = Hmac<Sha256>;

/// Length of a session id and of every derived key, in bytes.
pub(super) const KEY_LEN: usize = 32;
/// Length of a signed session cookie value: base64url(id) `.` base64url(mac).
const SIGNED_COOKIE_LEN: usize = 43 + 1 + 43;
/// Name of the file holding the generated secret inside `data_dir`.
const SECRET_FILE: &str = "session.secret";

/// The file [`resolve_secret`] generates the secret into when `session.secret` is absent.
pub(crate) fn generated_secret_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SECRET_FILE)
}

/// Returns the secret to sign and encrypt sessions with: `session.secret` when set (it must be
/// at least 32 bytes), else 32 random bytes generated into `data_dir/session.secret` (mode 0600)
/// on first start and read back on later starts. Call once at startup and on reload.
pub(crate) fn resolve_secret(
    cfg: &SessionConfig,
    data_dir: &Path,
) -> Result<Vec<u8>, SessionError> {
    if let Some(secret) = &cfg.secret {
        let bytes = secret.value.expose().as_bytes();
        if bytes.len() < KEY_LEN {
            return Err(SessionError::SecretTooShort(bytes.len()));
        }
        return Ok(bytes.to_vec());
    }
    let path = generated_secret_path(data_dir);
    let file_err = |source: std::io::Error| SessionError::SecretFile {
        path: path.clone(),
        source,
    };
    let content_err = |message: String| SessionError::SecretFileContent {
        path: path.clone(),
        message,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|e| content_err(format!("not base64: {e}")))?;
            if bytes.len() < KEY_LEN {
                return Err(content_err(format!(
                    "holds {} bytes; at least 32 are required",
                    bytes.len()
                )));
            }
            Ok(bytes)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir).map_err(file_err)?;
            let mut bytes = vec![0u8; KEY_LEN];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            match opts.open(&path) {
                Ok(mut file) => {
                    let text = base64::engine::general_purpose::STANDARD.encode(&bytes);
                    file.write_all(format!("{text}\n").as_bytes())
                        .and_then(|()| file.sync_all())
                        .map_err(file_err)?;
                    Ok(bytes)
                }
                // Another process won the race: use its secret.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    resolve_secret(cfg, data_dir)
                }
                Err(e) => Err(file_err(e)),
            }
        }
        Err(e) => Err(file_err(e)),
    }
}

fn derive(secret: &[u8], label: &[u8]) -> [u8; KEY_LEN] {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(label);
    mac.finalize().into_bytes().into()
}

fn keyed(key: &[u8; KEY_LEN]) -> HmacSha256 {
    HmacSha256::new_from_slice(key).expect("HMAC accepts any key length")
}

/// Keys derived from the session secret, one per purpose.
pub(super) struct Keys {
    sign: HmacSha256,
    version: HmacSha256,
    csrf: HmacSha256,
}

impl Keys {
    /// The keys for `secret` (at least [`KEY_LEN`] bytes; the caller checks).
    pub(super) fn derive(secret: &[u8]) -> Keys {
        Keys {
            sign: keyed(&derive(secret, b"gateway/session/id/v1")),
            version: keyed(&derive(secret, b"gateway/session/credential-version/v1")),
            csrf: keyed(&derive(secret, b"gateway/session/csrf/v1")),
        }
    }

    /// HMAC of `payload` for CSRF `purpose` (`cookie`, `form`, `derived`).
    pub(super) fn csrf_mac(&self, purpose: &[u8], payload: &[u8]) -> [u8; KEY_LEN] {
        let mut mac = self.csrf.clone();
        mac.update(purpose);
        mac.update(&[0]);
        mac.update(payload);
        mac.finalize().into_bytes().into()
    }

    /// HMAC of a credential version, recorded at login and compared on revalidation.
    pub(super) fn version_digest(&self, version: &str) -> [u8; KEY_LEN] {
        let mut mac = self.version.clone();
        mac.update(version.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The cookie value naming session `id`: the id and its HMAC, base64url.
    pub(super) fn sign_id(&self, id: &SessionId) -> String {
        let mut mac = self.sign.clone();
        mac.update(id);
        let tag: [u8; KEY_LEN] = mac.finalize().into_bytes().into();
        format!("{}.{}", B64.encode(id), B64.encode(tag))
    }

    /// The session id in a cookie value from [`sign_id`](Self::sign_id); `None` when forged or
    /// malformed.
    pub(super) fn verify_id(&self, value: &str) -> Option<SessionId> {
        if value.len() != SIGNED_COOKIE_LEN {
            return None;
        }
        let (id, tag) = value.split_once('.')?;
        let id = decode_exact::<KEY_LEN>(id)?;
        let tag = decode_exact::<KEY_LEN>(tag)?;
        let mut mac = self.sign.clone();
        mac.update(&id);
        mac.verify_slice(&tag).ok()?;
        Some(id)
    }
}

/// The key for the cookie store's encryption.
pub(super) fn aead_key(secret: &[u8]) -> [u8; KEY_LEN] {
    derive(secret, b"gateway/session/aead/v1")
}

/// The key sealing the provider tokens of a session in the server-side stores (SQL, Redis).
pub(super) fn provider_tokens_key(secret: &[u8]) -> [u8; KEY_LEN] {
    derive(secret, b"gateway/session/provider-tokens/v1")
}

/// `N` random bytes.
pub(super) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::thread_rng().fill_bytes(&mut b);
    b
}

/// Decodes base64url `s` into exactly `N` bytes, without allocating.
pub(super) fn decode_exact<const N: usize>(s: &str) -> Option<[u8; N]> {
    let mut buf = [0u8; 64];
    if s.len() > 86 {
        return None;
    }
    let n = B64.decode_slice(s.as_bytes(), &mut buf).ok()?;
    if n != N {
        return None;
    }
    buf[..N].try_into().ok()
}

#[cfg(test)]
mod tests {
    use std::error::Error;
    use std::time::Duration;

    use auth_core::Secret;

    use super::resolve_secret;
    use crate::config::model::{SessionConfig, spanned};
    use crate::error_chain::Chain;
    use crate::session::SessionError;

    #[test]
    fn an_unwritable_secret_file_keeps_its_io_cause() {
        let dir = tempfile::tempdir().expect("tempdir");
        // `data_dir` is a file: the secret's directory cannot be created.
        let data_dir = dir.path().join("not-a-dir");
        std::fs::write(&data_dir, b"x").expect("write");
        let err = resolve_secret(&SessionConfig::default(), &data_dir).expect_err("a file");
        let cause = err
            .source()
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .expect("the io error is the source");
        let shown = Chain(&err).to_string();
        assert!(shown.starts_with("session secret file `"), "{shown}");
        assert!(shown.ends_with(&format!(": {cause}")), "{shown}");
        assert_eq!(shown.matches(&cause.to_string()).count(), 1, "{shown}");
    }

    fn session_config(store: &str, ttl: Duration, idle: Duration) -> SessionConfig {
        SessionConfig {
            store: spanned(crate::config::Parsed::new(store)),
            ttl: auth_core::Duration(ttl),
            idle_timeout: auth_core::Duration(idle),
            ..SessionConfig::default()
        }
    }

    #[test]
    fn configured_secret_must_be_at_least_32_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = session_config("memory", Duration::from_secs(60), Duration::from_secs(60));
        cfg.secret = Some(spanned(Secret::new("too short")));
        match resolve_secret(&cfg, dir.path()) {
            Err(SessionError::SecretTooShort(9)) => {}
            other => panic!("expected SecretTooShort(9), got {other:?}"),
        }
        let long = "x".repeat(40);
        cfg.secret = Some(spanned(Secret::new(long.clone())));
        assert_eq!(
            resolve_secret(&cfg, dir.path()).expect("secret"),
            long.as_bytes()
        );
        assert!(
            !dir.path().join("session.secret").exists(),
            "nothing generated"
        );
    }

    #[test]
    fn quickstart_secret_is_generated_once_with_mode_0600_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().join("state");
        let cfg = session_config("memory", Duration::from_secs(60), Duration::from_secs(60));
        let first = resolve_secret(&cfg, &data_dir).expect("generated");
        assert_eq!(first.len(), 32);
        let path = data_dir.join("session.secret");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("file").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = resolve_secret(&cfg, &data_dir).expect("reused");
        assert_eq!(first, again);
        let other_dir = tempfile::tempdir().expect("tempdir");
        assert_ne!(
            first,
            resolve_secret(&cfg, other_dir.path()).expect("generated")
        );

        std::fs::write(&path, "c2hvcnQ=\n").expect("write");
        assert!(
            resolve_secret(&cfg, &data_dir).is_err(),
            "a short file is refused"
        );
    }
}
