//! `authgate backends`: the registered backend types and their options.

use std::io::Write;

use auth_core::Registry;

/// Lists every backend type linked into this binary, with the credential kinds it accepts and
/// each option's type, default, whether it is required or secret, and its doc.
pub(crate) fn backends(out: &mut dyn Write) -> Result<u8, super::CliError> {
    let registry = Registry::from_inventory()?;
    let mut first = true;
    for reg in registry.iter() {
        if !first {
            writeln!(out)?;
        }
        first = false;
        writeln!(out, "{}", reg.type_name)?;
        for line in reg.description.trim().lines() {
            writeln!(out, "  {}", line.trim_end())?;
        }
        let accepts: Vec<&str> = reg
            .accepts
            .iter()
            .map(|k| auth_core::registry::kind_name(*k))
            .collect();
        writeln!(out, "  accepts: {}", accepts.join(", "))?;
        if reg.options.is_empty() {
            writeln!(out, "  (no options)")?;
        }
        for o in reg.options {
            let mut facts = vec![o.ty.replace(' ', "")];
            if o.required {
                facts.push("required".into());
            }
            match o.default {
                Some(d) => facts.push(format!("default {d}")),
                None if !o.required => facts.push("optional".into()),
                None => {}
            }
            if o.secret {
                facts.push("secret: literal, env:NAME or file:PATH".into());
            }
            writeln!(out, "  {}: {}", o.name, facts.join("; "))?;
            for line in o.doc.trim().lines() {
                writeln!(out, "      {}", line.trim())?;
            }
        }
    }
    if first {
        writeln!(out, "no backend types are registered in this build")?;
    }
    Ok(0)
}
