//! An error with its causes, for the operator: [`Chain`] prints an error followed by each
//! [`source`](std::error::Error::source) that its message does not already contain, `: `
//! between them. Errors keep their cause as a source (`#[source]`/`#[from]`) rather than a
//! copied string; those whose message could carry a secret (a store URL with a password, a
//! token) keep a message only, and say so at the type.

use std::error::Error;
use std::fmt;

/// Displays an error and its chain of causes (see the module docs). Use it wherever an error
/// reaches a log line or the terminal: `tracing::warn!(error = %Chain(&e), ...)`.
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.0.to_string();
        let mut cause = self.0.source();
        while let Some(e) = cause {
            let text = e.to_string();
            // Most messages already end with their cause (`{context}: {source}`): not twice.
            if !text.is_empty() && !shown.contains(&text) {
                shown.push_str(": ");
                shown.push_str(&text);
            }
            cause = e.source();
        }
        f.write_str(&shown)
    }
}

#[cfg(test)]
mod tests {
    use super::Chain;

    #[derive(Debug, thiserror::Error)]
    #[error("reading the key file")]
    struct Outer(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("reading the key file: {0}")]
    struct Quoting(#[source] std::io::Error);

    fn io() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::NotFound, "no such file")
    }

    #[test]
    fn the_cause_is_appended_once() {
        assert_eq!(
            Chain(&Outer(io())).to_string(),
            "reading the key file: no such file"
        );
        assert_eq!(
            Chain(&Quoting(io())).to_string(),
            "reading the key file: no such file"
        );
        assert_eq!(Chain(&io()).to_string(), "no such file");
    }
}
