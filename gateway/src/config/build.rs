//! Turning a loaded config's chain entries into a running [`Chain`].

use auth_core::{BuildContext, Chain, ChainEntry};

use super::load::location;
use super::{ConfigErrors, Diagnostic, LoadedConfig, diagnostic::sort};

/// Builds every chain entry through its backend type's factory. `services` carries what the
/// gateway shares with backends (the local user store...); each entry gets its own name and the
/// config's directory as `base_dir`. Takes the parsed options out of `loaded`, so call it once
/// per load. Build errors are located at the entry's `options`.
pub fn build_chain(
    loaded: &mut LoadedConfig,
    services: &BuildContext,
) -> Result<Chain, ConfigErrors> {
    let mut entries = Vec::with_capacity(loaded.config.chain.len());
    let mut errors = Vec::new();
    for entry in &mut loaded.config.chain {
        let name = entry.name.value.clone();
        let Some(factory) = entry.options.take() else {
            errors.push(Diagnostic::error(
                &loaded.source,
                location(&entry.name),
                format!("entry `{name}` has no parsed options (load the config with `config::load`, once per build)"),
            ));
            continue;
        };
        let mut ctx = services.clone();
        ctx.entry = name.clone();
        ctx.base_dir = loaded.base_dir.clone();
        match factory.build(&ctx) {
            Ok(backend) => entries.push(ChainEntry {
                name,
                type_name: entry.type_name.value.clone(),
                backend,
                on_reject: entry.on_reject,
                on_error: entry.on_error,
                timeout: entry.timeout.get(),
                provision: entry.provision,
            }),
            Err(e) => errors.push(Diagnostic::error(
                &loaded.source,
                entry.options_location,
                format!(
                    "cannot build backend `{name}` (type `{}`): {e}",
                    entry.type_name.value
                ),
            )),
        }
    }
    if errors.is_empty() {
        Ok(Chain::new(entries))
    } else {
        sort(&mut errors);
        Err(ConfigErrors(errors))
    }
}
