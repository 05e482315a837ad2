//! `gateway run`.

use std::path::Path;

/// Exit code for a config that does not load or build.
const INVALID_CONFIG: u8 = 2;

/// Serves with the config at `path` until SIGTERM/SIGINT (see [`crate::server::run`]).
pub(crate) fn run(path: &Path) -> Result<u8, super::CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match runtime.block_on(crate::server::run(path)) {
        Ok(()) => Ok(0),
        Err(crate::server::ServerError::Config(message)) => {
            eprintln!("{message}");
            Ok(INVALID_CONFIG)
        }
        Err(e) => Err(super::CliError::Message(e.to_string())),
    }
}
