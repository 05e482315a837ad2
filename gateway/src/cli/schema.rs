//! `authgate schema`.

use std::io::Write;

use auth_core::Registry;

/// Prints the config's JSON Schema, including every registered backend type's options.
pub(crate) fn schema(out: &mut dyn Write) -> Result<u8, super::CliError> {
    let registry = Registry::from_inventory()?;
    let schema = crate::config::schema::config_schema(&registry);
    let text = serde_json::to_string_pretty(&schema)
        .map_err(|e| super::CliError::Message(format!("cannot serialize the schema: {e}")))?;
    writeln!(out, "{text}")?;
    Ok(0)
}
