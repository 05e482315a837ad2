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
    /// Skip options; note risky settings as warnings `(location, message)`.
    Survey { warnings: Vec<(Location, String)> },
    /// Parse entry i's options with `registrations[i]` (`None`: unknown type, skipped).
    Parse {
        registrations: Vec<Option<&'static BackendRegistration>>,
        current: usize,
    },
}

thread_local! {
    static PASS: RefCell<Option<Pass>> = const { RefCell::new(None) };
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
    (
        result,
        pass.unwrap_or(Pass::Survey {
            warnings: Vec::new(),
        }),
    )
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
            PASS.with(|p| {
                if let Some(Pass::Parse { current, .. }) = p.borrow_mut().as_mut() {
                    *current = index;
                }
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
                             hash them (`gateway hash-password`) and remove this",
                        ),
                        ("password_format", Some("plain")) => Some(
                            "`password_format: plain` compares passwords stored in clear text; \
                             prefer a hashed format",
                        ),
                        _ => None,
                    };
                    if let Some(message) = risky {
                        PASS.with(|p| {
                            if let Some(Pass::Survey { warnings }) = p.borrow_mut().as_mut() {
                                warnings.push((value.referenced, message.to_string()));
                            }
                        });
                    }
                }
                _ => {
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
