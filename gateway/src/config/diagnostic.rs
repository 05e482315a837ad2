//! What the loader reports: one [`Diagnostic`] per problem, printed as `file:line:col: message`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_saphyr::Location;

/// Whether a diagnostic stops the config from loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The config is refused.
    Error,
    /// The config loads, but the operator should look at this.
    Warning,
}

/// One problem in a config file. `line` and `column` are 1-based; 0 means "the whole file".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file, as given to the loader.
    pub file: PathBuf,
    /// 1-based line, or 0 when the problem has no single place.
    pub line: u64,
    /// 1-based column, or 0.
    pub column: u64,
    /// What is wrong and, where possible, how to fix it. Never contains a secret.
    pub message: String,
    /// Error or warning.
    pub severity: Severity,
}

impl Diagnostic {
    /// An error at `location` (unknown locations render as the file alone).
    pub fn error(file: &Path, location: Location, message: impl Into<String>) -> Self {
        Diagnostic::new(file, location, message.into(), Severity::Error)
    }

    /// A warning at `location`.
    pub fn warning(file: &Path, location: Location, message: impl Into<String>) -> Self {
        Diagnostic::new(file, location, message.into(), Severity::Warning)
    }

    fn new(file: &Path, location: Location, message: String, severity: Severity) -> Self {
        Diagnostic {
            file: file.to_path_buf(),
            line: location.line(),
            column: location.column(),
            message,
            severity,
        }
    }

    /// Whether this is an error (not a warning).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        f.write_str(": ")?;
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Every error found in a config file (parse errors come one at a time: the YAML parser stops at
/// the first; semantic errors all at once). `Display` prints one `file:line:col: message` per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<Diagnostic>);

impl ConfigErrors {
    /// One error about the whole file.
    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        ConfigErrors(vec![Diagnostic::error(file, Location::UNKNOWN, message)])
    }

    /// The diagnostics, in file order.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.0
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Sorts diagnostics into file order (errors before warnings at one place).
pub(crate) fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by(|a, b| {
        (a.line, a.column, a.severity, &a.message).cmp(&(b.line, b.column, b.severity, &b.message))
    });
}
