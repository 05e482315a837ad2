//! Scalars parsed once, when the file is read. A [`Parsed<T>`] keeps what the operator wrote
//! and either the typed value or why it is not one; wrapped in `Spanned`, it also keeps its
//! `line:col`. Parsing never fails the whole file: [`validate`](super::validate) reports every
//! unparsable value together with the other semantic errors, at its location, and the code that
//! builds the running gateway reads the typed value with [`Parsed::get`], never the text again.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};
use url::Url;

/// A value that can be read from one YAML string.
pub trait Scalar: Sized {
    /// Parses `text` (already trimmed); the error is a short reason.
    fn parse_scalar(text: &str) -> Result<Self, String>;
}

impl Scalar for SocketAddr {
    fn parse_scalar(text: &str) -> Result<Self, String> {
        SocketAddr::from_str(text).map_err(|e| e.to_string())
    }
}

impl Scalar for Url {
    fn parse_scalar(text: &str) -> Result<Self, String> {
        Url::parse(text).map_err(|e| e.to_string())
    }
}

/// A CIDR, or a single address (`/32` or `/128`).
impl Scalar for IpNet {
    fn parse_scalar(text: &str) -> Result<Self, String> {
        IpNet::from_str(text)
            .or_else(|_| IpAddr::from_str(text).map(IpNet::from))
            .map_err(|e| e.to_string())
    }
}

/// What the operator wrote, and the value parsed from it (or why it is not one).
#[derive(Clone, PartialEq)]
pub struct Parsed<T> {
    written: String,
    value: Result<T, String>,
}

impl<T: Scalar> Parsed<T> {
    /// Parses `written` (surrounding whitespace ignored).
    pub fn new(written: impl Into<String>) -> Self {
        let written = written.into();
        let value = T::parse_scalar(written.trim());
        Parsed { written, value }
    }
}

impl<T> Parsed<T> {
    /// The text as written in the file.
    pub fn written(&self) -> &str {
        &self.written
    }

    /// The typed value; `None` when it did not parse (validation has reported it).
    pub fn get(&self) -> Option<&T> {
        self.value.as_ref().ok()
    }

    /// Why the value did not parse.
    pub fn error(&self) -> Option<&str> {
        self.value.as_ref().err().map(String::as_str)
    }
}

/// Shows what was written (error messages quote the operator's text).
impl<T> fmt::Display for Parsed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

impl<T> fmt::Debug for Parsed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.written, f)
    }
}

impl<'de, T: Scalar> Deserialize<'de> for Parsed<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Parsed::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_text_and_the_value_or_the_reason() {
        let a = Parsed::<SocketAddr>::new(" 127.0.0.1:8080 ");
        assert_eq!(a.get(), Some(&"127.0.0.1:8080".parse().unwrap()));
        assert_eq!(a.written(), " 127.0.0.1:8080 ");
        let bad = Parsed::<SocketAddr>::new("localhost:8080");
        assert!(bad.get().is_none());
        assert!(bad.error().is_some());
    }

    #[test]
    fn a_bare_address_is_a_one_address_network() {
        let one = Parsed::<IpNet>::new("192.0.2.7");
        assert_eq!(one.get(), Some(&"192.0.2.7/32".parse().unwrap()));
        assert!(Parsed::<IpNet>::new("10.0.0.300/8").get().is_none());
    }

    #[test]
    fn equal_when_written_alike() {
        assert!(Parsed::<Url>::new("http://a/") == Parsed::<Url>::new("http://a/"));
        assert!(Parsed::<Url>::new("http://a/") != Parsed::<Url>::new("http://b/"));
    }
}
