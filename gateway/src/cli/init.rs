//! `authgate init`: a commented starter config for one shape, which `authgate check` accepts.

use std::io::Write;
use std::path::Path;

/// What a starter config authenticates against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shape {
    /// The built-in demo app and two static users: no external service (not for production).
    Demo,
    /// An Apache htpasswd file next to the config, then the local user store.
    Htpasswd,
    /// An LDAP directory (direct bind as the user; a service-account search is commented in).
    Ldap,
    /// A Django project's `auth_user` table, through its database.
    DjangoSql,
}

impl Shape {
    fn template(self) -> &'static str {
        match self {
            Shape::Demo => include_str!("init/demo.yaml"),
            Shape::Htpasswd => include_str!("init/htpasswd.yaml"),
            Shape::Ldap => include_str!("init/ldap.yaml"),
            Shape::DjangoSql => include_str!("init/django-sql.yaml"),
        }
    }
}

/// Writes `shape`'s starter config to `output` (`-`: `out`). Refuses to replace an existing file.
pub(crate) fn init(
    shape: Shape,
    output: &Path,
    out: &mut dyn Write,
) -> Result<u8, super::CliError> {
    let text = shape.template();
    if output == Path::new("-") {
        out.write_all(text.as_bytes())?;
        return Ok(0);
    }
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(output)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(super::CliError::Message(format!(
                "{} exists; not replacing it (choose another file with --output)",
                output.display()
            )));
        }
        Err(e) => {
            return Err(super::CliError::Message(format!(
                "cannot create {}: {e}",
                output.display()
            )));
        }
    };
    file.write_all(text.as_bytes())?;
    writeln!(
        out,
        "wrote {} (shape {}); next: authgate check --config {0}",
        output.display(),
        clap::ValueEnum::to_possible_value(&shape)
            .map(|v| v.get_name().to_string())
            .unwrap_or_default(),
    )?;
    Ok(0)
}
