//! Deserializing `chain:`. Each entry's `options` belongs to its backend type, so the loader
//! parses the file twice: the survey pass learns every entry's `type` (options skipped, only
//! scanned for risky settings), the parse pass hands entry i's `options` to its registration's
//! `parse`, on the live YAML deserializer, so errors inside options keep their own `line:col`.
//! The pass is chosen by a thread-local that `load_str` sets for the duration of one parse.

use std::cell::RefCell;
use std::fmt;

use auth_core::registry::{BackendFactory, BackendRegistration};
use auth_core::{Duration, OnError, OnReject, Provision};
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};

use super::model::ChainEntryConfig;

/// What the current parse does with `options`.
pub(crate) enum Pass {
    /// Skip options; note risky settings as warnings `(location, message)`, and how each
    /// top-level option value is written (for the literal-secret check).
    Survey {
        warnings: Vec<(Location, String)>,
        current: usize,
        scans: Vec<OptionScan>,
    },
    /// Parse entry i's options with `registrations[i]` (`None`: unknown type, skipped).
    Parse {
        registrations: Vec<Option<&'static BackendRegistration>>,
        current: usize,
    },
}

thread_local! {
    static PASS: RefCell<Option<Pass>> = const { RefCell::new(None) };
}

/// How one option value of chain entry `entry` is written, without keeping the value: whether
/// it is a literal (not `env:` / `file:`) and whether it is a URL carrying a password. `key` is
/// the option's name, or `name.sub` for a string value inside a mapping (`headers.X-Token`).
#[derive(Debug, Clone)]
pub(crate) struct OptionScan {
    pub(crate) entry: usize,
    pub(crate) key: String,
    pub(crate) at: Location,
    pub(crate) literal: bool,
    pub(crate) url_password: bool,
}

impl Pass {
    /// A fresh survey pass.
    pub(crate) fn survey() -> Pass {
        Pass::Survey {
            warnings: Vec::new(),
            current: 0,
            scans: Vec::new(),
        }
    }
}

/// Whether a written secret value is a literal rather than `env:NAME` / `file:PATH`.
pub(crate) fn is_literal_secret(value: &str) -> bool {
    !value.starts_with("env:") && !value.starts_with("file:")
}

/// Whether `value` is a URL with a password in it (`redis://:pw@host`, `postgres://u:pw@h/db`).
pub(crate) fn url_has_password(value: &str) -> bool {
    value.contains("://")
        && url::Url::parse(value.trim()).is_ok_and(|u| u.password().is_some_and(|p| !p.is_empty()))
}

/// Runs `f` with `pass` installed, returning what `f` returns and the pass afterwards.
pub(crate) fn with_pass<R>(pass: Pass, f: impl FnOnce() -> R) -> (R, Pass) {
    struct Restore(Option<Pass>);
    impl Drop for Restore {
        fn drop(&mut self) {
            PASS.with(|p| *p.borrow_mut() = self.0.take());
        }
    }
    let previous = PASS.with(|p| p.borrow_mut().replace(pass));
    let restore = Restore(previous);
    let result = f();
    let pass = PASS.with(|p| p.borrow_mut().take());
    drop(restore);
    (result, pass.unwrap_or_else(Pass::survey))
}

/// `deserialize_with` for `Config::chain`.
pub(crate) fn deserialize_chain<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<ChainEntryConfig>, D::Error> {
    d.deserialize_any(ChainVisitor)
}

struct ChainVisitor;

impl<'de> Visitor<'de> for ChainVisitor {
    type Value = Vec<ChainEntryConfig>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of chain entries (`- name: ..., type: ...`)")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        loop {
            let index = entries.len();
            PASS.with(|p| match p.borrow_mut().as_mut() {
                Some(Pass::Parse { current, .. } | Pass::Survey { current, .. }) => {
                    *current = index;
                }
                None => {}
            });
            match seq.next_element::<RawEntry>()? {
                Some(raw) => entries.push(raw.into_config()),
                None => return Ok(entries),
            }
        }
    }
}

fn five_seconds() -> Duration {
    Duration::from_secs(5)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    name: Spanned<String>,
    #[serde(rename = "type")]
    type_name: Spanned<String>,
    #[serde(default)]
    on_reject: OnReject,
    #[serde(default)]
    on_error: OnError,
    #[serde(default = "five_seconds")]
    timeout: Duration,
    #[serde(default)]
    provision: Provision,
    #[serde(default)]
    options: Option<Spanned<OptionsSlot>>,
}

impl RawEntry {
    fn into_config(self) -> ChainEntryConfig {
        let (options, options_location) = match self.options {
            Some(s) => (s.value.0, s.referenced),
            None => (None, self.name.referenced),
        };
        ChainEntryConfig {
            name: self.name,
            type_name: self.type_name,
            on_reject: self.on_reject,
            on_error: self.on_error,
            timeout: self.timeout,
            provision: self.provision,
            options,
            options_location,
        }
    }
}

/// An entry's `options`: parsed by its registration in the parse pass, skipped otherwise.
struct OptionsSlot(Option<Box<dyn BackendFactory>>);

impl<'de> Deserialize<'de> for OptionsSlot {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (registration, survey) = PASS.with(|p| match p.borrow().as_ref() {
            Some(Pass::Parse {
                registrations,
                current,
            }) => (registrations.get(*current).copied().flatten(), false),
            Some(Pass::Survey { .. }) => (None, true),
            None => (None, false),
        });
        if let Some(reg) = registration {
            let mut erased = <dyn erased_serde::Deserializer>::erase(d);
            return (reg.parse)(&mut erased)
                .map(|f| OptionsSlot(Some(f)))
                .map_err(de::Error::custom);
        }
        if survey {
            d.deserialize_any(SurveyVisitor)?;
        } else {
            IgnoredAny::deserialize(d)?;
        }
        Ok(OptionsSlot(None))
    }
}

/// Looks through one entry's options for settings that deserve a warning.
struct SurveyVisitor;

impl<'de> Visitor<'de> for SurveyVisitor {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the backend's options")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Scalar>()? {
            match key.0.as_deref() {
                Some(k @ ("allow_plaintext" | "password_format")) => {
                    let value = map.next_value::<Spanned<Scalar>>()?;
                    let risky = match (k, value.value.0.as_deref()) {
                        ("allow_plaintext", Some("true")) => Some(
                            "`allow_plaintext: true` accepts passwords stored in clear text; \
                             hash them (`authgate hash-password`) and remove this",
                        ),
                        ("password_format", Some("plain")) => Some(
                            "`password_format: plain` compares passwords stored in clear text; \
                             prefer a hashed format",
                        ),
                        _ => None,
                    };
                    if let Some(message) = risky {
                        PASS.with(|p| {
                            if let Some(Pass::Survey { warnings, .. }) = p.borrow_mut().as_mut() {
                                warnings.push((value.referenced, message.to_string()));
                            }
                        });
                    }
                }
                Some(k) => {
                    let key = k.to_string();
                    let value = map.next_value::<Spanned<Written>>()?;
                    let mut found = Vec::new();
                    match value.value {
                        Written::Text {
                            literal,
                            url_password,
                        } => {
                            found.push((key, value.referenced, literal, url_password));
                        }
                        Written::Map(entries) => {
                            for (sub, at, literal, url_password) in entries {
                                found.push((format!("{key}.{sub}"), at, literal, url_password));
                            }
                        }
                        Written::Other => {}
                    }
                    PASS.with(|p| {
                        if let Some(Pass::Survey { current, scans, .. }) = p.borrow_mut().as_mut() {
                            scans.extend(found.into_iter().map(
                                |(key, at, literal, url_password)| OptionScan {
                                    entry: *current,
                                    key,
                                    at,
                                    literal,
                                    url_password,
                                },
                            ));
                        }
                    });
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// A scalar's text (`None` for a mapping or sequence, which are skipped).
struct Scalar(Option<String>);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// How an option value is written, for the literal-secret check; the text itself is dropped.
enum Written {
    /// A string.
    Text { literal: bool, url_password: bool },
    /// A mapping: its string values by key, with their locations.
    Map(Vec<(String, Location, bool, bool)>),
    /// Anything else.
    Other,
}

impl Written {
    fn text(v: &str) -> Written {
        Written::Text {
            literal: is_literal_secret(v),
            url_password: url_has_password(v),
        }
    }
}

impl<'de> Deserialize<'de> for Written {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Written;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Written, E> {
                Ok(Written::Other)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Written, E> {
                Ok(Written::Other)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Written, E> {
                Ok(Written::Other)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Written, E> {
                Ok(Written::Other)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Written, E> {
                Ok(Written::text(v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Written, E> {
                Ok(Written::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Written, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Scalar>()? {
                    let value = map.next_value::<Spanned<Written>>()?;
                    if let (
                        Some(key),
                        Written::Text {
                            literal,
                            url_password,
                        },
                    ) = (key.0, value.value)
                    {
                        entries.push((key, value.referenced, literal, url_password));
                    }
                }
                Ok(Written::Map(entries))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Written, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Written::Other)
            }
        }
        d.deserialize_any(V)
    }
}
