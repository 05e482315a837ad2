//! Reading a password: from the terminal without echo, or one line from stdin when piped (for
//! scripts and tests). Never echoed, never logged.

use std::io::{BufRead, IsTerminal};

/// Reads one password; `prompt` is shown on a terminal only.
pub(crate) fn read_password(prompt: &str) -> std::io::Result<String> {
    if std::io::stdin().is_terminal() {
        rpassword::prompt_password(prompt)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let trimmed = line.strip_suffix('\n').unwrap_or(&line);
        Ok(trimmed.strip_suffix('\r').unwrap_or(trimmed).to_string())
    }
}

/// Whether input comes from a terminal (so a confirmation can be asked).
pub(crate) fn interactive() -> bool {
    std::io::stdin().is_terminal()
}
