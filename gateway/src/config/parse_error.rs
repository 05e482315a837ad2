//! Turns a `serde-saphyr` error into a [`Diagnostic`] with an operator-facing message.
//!
//! Errors raised inside a backend's `options` cross an `erased_serde` boundary, which keeps only
//! their text (`message at line L, column C`); the first such location in the text is the
//! innermost, hence the most precise, so it wins over the error's own (outer) location.

use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;
use serde_saphyr::{DefaultMessageFormatter, Error, Location, MessageFormatter};

use super::Diagnostic;

static LOCATION_SUFFIX: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r" at line (\d+), column (\d+)").expect("static regex"));

/// A parse error as one diagnostic.
pub(crate) fn diagnostic(file: &Path, err: &Error) -> Diagnostic {
    let mut inner = err;
    loop {
        let next = inner.without_snippet();
        if std::ptr::eq(next, inner) {
            break;
        }
        inner = next;
    }
    let raw = DefaultMessageFormatter.format_message(inner).into_owned();
    let (text, line, column) = match LOCATION_SUFFIX.captures(&raw) {
        Some(c) => {
            let whole = c.get(0).map_or(0..0, |m| m.range());
            let line = c[1].parse().unwrap_or(0);
            let column = c[2].parse().unwrap_or(0);
            (raw[..whole.start].to_string(), line, column)
        }
        None => {
            let loc = err.location().unwrap_or(Location::UNKNOWN);
            (raw.clone(), loc.line(), loc.column())
        }
    };
    let mut d = Diagnostic::error(file, Location::UNKNOWN, polish(&text));
    d.line = line;
    d.column = column;
    d
}

/// Rewrites serde's wording into the config's: keys, not fields; the closest known name.
pub(crate) fn polish(message: &str) -> String {
    static UNKNOWN_FIELD: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^unknown field `(.*?)`, expected (?:one of )?(.*)$").expect("static regex")
    });
    static NO_FIELDS: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^unknown field `(.*?)`, there are no fields$").expect("static regex")
    });
    static UNKNOWN_VARIANT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^unknown variant `(.*?)`, expected (?:one of )?(.*)$").expect("static regex")
    });
    static DUPLICATE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^duplicate mapping key: (.*?), set DuplicateKeyPolicy.*$")
            .expect("static regex")
    });
    static MISSING: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^missing field `(.*?)`$").expect("static regex"));

    let message = message.trim();
    if message.starts_with("unsupported tag ") {
        return format!(
            "{message}: the config gives YAML tags no meaning, and ignoring one would load \
             something other than what was written; remove it"
        );
    }
    if let Some(c) = NO_FIELDS.captures(message) {
        return format!("unknown key `{}`; this section takes no keys", &c[1]);
    }
    if let Some(c) = UNKNOWN_FIELD.captures(message) {
        return unknown_name("key", &c[1], &c[2]);
    }
    if let Some(c) = UNKNOWN_VARIANT.captures(message) {
        return unknown_name("value", &c[1], &c[2]);
    }
    if let Some(c) = DUPLICATE.captures(message) {
        return format!("duplicate key `{}`", c[1].trim_matches('`'));
    }
    if let Some(c) = MISSING.captures(message) {
        return format!("missing required key `{}`", &c[1]);
    }
    if let Some(ty) = message.strip_prefix("invalid ")
        && INTEGER_TYPES.contains(&ty)
    {
        let sign = if ty.starts_with('u') {
            "non-negative "
        } else {
            ""
        };
        return format!("invalid value: expected a {sign}whole number (`{ty}`)");
    }
    match message {
        "expected mapping start" => {
            return "wrong type: expected a mapping (`key: value` entries)".to_string();
        }
        "expected sequence start" => {
            return "wrong type: expected a list (`- item` entries or `[a, b]`)".to_string();
        }
        "expected string scalar" => return "wrong type: expected a string".to_string(),
        _ => {}
    }
    if message == "unexpected end of file" || message == "unexpected end of input" {
        return "unexpected end of file (is the file empty?)".to_string();
    }
    message.to_string()
}

const INTEGER_TYPES: &[&str] = &[
    "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize",
];

fn unknown_name(what: &str, name: &str, expected: &str) -> String {
    let known: Vec<&str> = expected
        .split(", ")
        .flat_map(|s| s.split(" or "))
        .map(|s| s.trim().trim_matches('`'))
        .filter(|s| !s.is_empty())
        .collect();
    let mut msg = format!("unknown {what} `{name}`");
    if let Some(s) = closest(name, &known) {
        msg.push_str(&format!("; did you mean `{s}`?"));
    }
    msg.push_str(&format!(" (expected one of: {})", known.join(", ")));
    msg
}

/// The known name closest to `name`, when close enough to be a likely typo.
pub(crate) fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(k, name), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min()
        .map(|(_, k)| k)
}
