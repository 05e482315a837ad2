//! `gateway run`.

use std::path::Path;

/// `gateway run` was called in a build whose server is not wired to the CLI yet.
#[derive(Debug, thiserror::Error)]
#[error(
    "`gateway run` is not wired to the server in this build: call `gateway::server` from `cli::run::run` (config `{0}`)"
)]
pub(crate) struct ServerNotWired(pub String);

/// Serves with the config at `path`. Until the server lands it refuses loudly rather than
/// pretending to serve.
pub(crate) fn run(path: &Path) -> Result<u8, super::CliError> {
    Err(super::CliError::Message(
        ServerNotWired(path.display().to_string()).to_string(),
    ))
}
