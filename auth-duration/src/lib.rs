//! The duration grammar of the gateway's configuration, in one place: `auth_core::Duration`
//! parses option values with it at run time and `#[auth_backend]` checks literal defaults with
//! it at compile time (a proc-macro crate cannot depend on `auth-core`), so both accept exactly
//! the same texts and word their refusals alike.

/// Parses `"500ms"`, `"30s"`, `"15m"`, `"8h"`, `"7d"`, combinations (`"1h 30m"`) and `"0"`. A
/// number without a unit is refused (is `5` seconds or minutes?). The error is operator-facing.
pub fn parse(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    if t == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "invalid duration `{text}`: a unit is required, e.g. \"{t}s\" or \"{t}ms\""
        ));
    }
    humantime::parse_duration(t).map_err(|e| {
        format!(
            "invalid duration `{text}`: {e}; expected e.g. \"500ms\", \"30s\", \"15m\", \"8h\", \"7d\""
        )
    })
}

#[cfg(test)]
mod tests {
    use super::parse;
    use std::time::Duration;

    #[test]
    fn units_are_required_except_for_zero() {
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse(" 30s "), Ok(Duration::from_secs(30)));
        assert_eq!(parse("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(
            parse("5").unwrap_err(),
            "invalid duration `5`: a unit is required, e.g. \"5s\" or \"5ms\""
        );
        let err = parse("5 parsecs").unwrap_err();
        assert!(err.starts_with("invalid duration `5 parsecs`: "), "{err}");
        assert!(
            err.ends_with("expected e.g. \"500ms\", \"30s\", \"15m\", \"8h\", \"7d\""),
            "{err}"
        );
        assert!(parse("").is_err());
    }
}
