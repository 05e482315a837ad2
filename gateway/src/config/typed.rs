//! Scalars parsed once, when the file is read. A [`Parsed<T>`] keeps what the operator wrote
//! and either the typed value or why it is not one; wrapped in `Spanned`, it also keeps its
//! `line:col`. Parsing never fails the whole file: [`validate`](super::validate) reports every
//! unparsable value together with the other semantic errors, at its location, and the code that
//! builds the running gateway reads the typed value with [`Parsed::get`], never the text again.

use std::cmp::Ordering;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use auth_storage::{SqlUrl, StoreUrl};
use http::{HeaderName, Method};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer};
use url::Url;

use super::model::StoreSetting;

/// A value that can be read from one YAML string.
pub trait Scalar: Sized {
    /// Whether blanks around the text are ignored (`false`: they make it invalid).
    const TRIMMED: bool = true;

    /// Parses `text` (already trimmed when [`TRIMMED`](Scalar::TRIMMED)); the error is a short
    /// reason.
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

/// `memory`, `cookie`, or a store URL parsed by the one storage layer.
impl Scalar for StoreSetting {
    fn parse_scalar(text: &str) -> Result<Self, String> {
        match text {
            "memory" => Ok(StoreSetting::Memory),
            "cookie" => Ok(StoreSetting::Cookie),
            url => StoreUrl::parse(url)
                .map(StoreSetting::Url)
                .map_err(|e| e.to_string()),
        }
    }
}

/// A SQL store URL (a Redis URL is refused, naming the SQL forms).
impl Scalar for SqlUrl {
    fn parse_scalar(text: &str) -> Result<Self, String> {
        SqlUrl::parse(text)
    }
}

/// A header name exactly as written: blanks around it are not part of any name.
impl Scalar for HeaderName {
    const TRIMMED: bool = false;

    fn parse_scalar(text: &str) -> Result<Self, String> {
        HeaderName::from_bytes(text.as_bytes()).map_err(|e| e.to_string())
    }
}

/// An HTTP method token, exactly as written (whether it is upper-case is a rule of
/// [`validate`](super::validate), which quotes the text).
impl Scalar for Method {
    const TRIMMED: bool = false;

    fn parse_scalar(text: &str) -> Result<Self, String> {
        Method::from_str(text).map_err(|e| e.to_string())
    }
}

/// What the operator wrote, and the value parsed from it (or why it is not one). Equal, and
/// ordered, by what was written (the value follows from it), so it can key a map.
#[derive(Clone, PartialEq)]
pub struct Parsed<T> {
    written: String,
    value: Result<T, String>,
}

impl<T: Scalar> Parsed<T> {
    /// Parses `written` (surrounding whitespace ignored when `T` says so).
    pub fn new(written: impl Into<String>) -> Self {
        let written = written.into();
        let text = if T::TRIMMED { written.trim() } else { &written };
        let value = T::parse_scalar(text);
        Parsed { written, value }
    }
}

impl<T: Scalar> From<&str> for Parsed<T> {
    fn from(written: &str) -> Self {
        Parsed::new(written)
    }
}

impl<T: Scalar> From<String> for Parsed<T> {
    fn from(written: String) -> Self {
        Parsed::new(written)
    }
}

impl<T: Eq> Eq for Parsed<T> {}

impl<T: Eq> PartialOrd for Parsed<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T: Eq> Ord for Parsed<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.written.cmp(&other.written)
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
    fn a_store_is_a_word_or_a_store_url_with_blanks_ignored() {
        assert_eq!(
            Parsed::<StoreSetting>::new(" memory ").get(),
            Some(&StoreSetting::Memory)
        );
        assert_eq!(
            Parsed::<StoreSetting>::new("cookie").get(),
            Some(&StoreSetting::Cookie)
        );
        let redis = Parsed::<StoreSetting>::new("rediss://:pw@cache:6380/0");
        assert!(matches!(
            redis.get(),
            Some(StoreSetting::Url(StoreUrl::Redis(u))) if u.is_tls()
        ));
        let sql = Parsed::<StoreSetting>::new("postgres://u@db/app");
        assert!(matches!(
            sql.get(),
            Some(StoreSetting::Url(StoreUrl::Sql(_)))
        ));
        // The words are exact; anything else must be a URL.
        assert!(Parsed::<StoreSetting>::new("Memory").get().is_none());
        let bad = Parsed::<StoreSetting>::new("mongodb://u:hunter2@db/");
        let reason = bad.error().expect("unknown scheme");
        assert!(reason.contains("mongodb"), "{reason}");
        assert!(
            !reason.contains("hunter2"),
            "the reason shows the URL redacted: {reason}"
        );
    }

    #[test]
    fn a_sql_url_refuses_redis_and_words() {
        let db = Parsed::<SqlUrl>::new(" sqlite://users.db ");
        assert_eq!(db.get().map(SqlUrl::as_str), Some("sqlite://users.db"));
        let redis = Parsed::<SqlUrl>::new("redis://cache/");
        assert!(redis.error().is_some_and(|e| e.contains("is Redis")));
        assert!(Parsed::<SqlUrl>::new("memory").get().is_none());
    }

    #[test]
    fn a_header_name_is_taken_exactly_as_written() {
        let name = Parsed::<HeaderName>::new("X-Api-Key");
        assert_eq!(name.get().map(HeaderName::as_str), Some("x-api-key"));
        assert_eq!(name.written(), "X-Api-Key");
        assert!(Parsed::<HeaderName>::new(" X-Api-Key").get().is_none());
        assert!(Parsed::<HeaderName>::new("X Api Key").get().is_none());
        assert!(Parsed::<HeaderName>::new("").get().is_none());
    }

    #[test]
    fn a_method_is_a_token_taken_as_written() {
        assert_eq!(
            Parsed::<Method>::new("PROPFIND").get().map(Method::as_str),
            Some("PROPFIND")
        );
        // Lower case is a token too (validate asks for upper case, quoting the text).
        assert!(Parsed::<Method>::new("post").get().is_some());
        assert!(Parsed::<Method>::new(" GET").get().is_none());
        assert!(Parsed::<Method>::new("GE T").get().is_none());
    }

    #[test]
    fn map_keys_are_ordered_by_what_was_written() {
        let keys: std::collections::BTreeSet<Parsed<HeaderName>> = ["X-B", "x-a", "X-A", "X-B"]
            .into_iter()
            .map(Parsed::new)
            .collect();
        let written: Vec<&str> = keys.iter().map(Parsed::written).collect();
        assert_eq!(written, ["X-A", "X-B", "x-a"]);
    }

    #[test]
    fn equal_when_written_alike() {
        assert!(Parsed::<Url>::new("http://a/") == Parsed::<Url>::new("http://a/"));
        assert!(Parsed::<Url>::new("http://a/") != Parsed::<Url>::new("http://b/"));
    }
}
