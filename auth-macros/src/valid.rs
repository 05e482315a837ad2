//! Rules across fields: what a single attribute cannot know on its own.

use std::collections::BTreeMap;

use proc_macro2::Span;

use crate::ast::{Backend, Record, is_named, option_inner, unraw, vec_inner};
use crate::attr::{DefaultLit, Role};
use crate::ctxt::Errors;

pub(crate) fn backend(input: &Backend<'_>, errors: &mut Errors) {
    if input.args.type_name.is_none() && !input.args.type_attempted {
        errors.at(
            Span::call_site(),
            "missing `type`: name the backend type YAML uses, e.g. `#[auth_backend(type = \"ldap\")]`",
        );
    }
    if let Some(path) = &input.derive_deserialize {
        errors.spanned(
            path,
            "remove `Deserialize` from the derive: #[auth_backend] generates it (refusing unknown keys, with the `#[option(...)]` defaults)",
        );
    }
    let mut seen: BTreeMap<String, &syn::Ident> = BTreeMap::new();
    for field in &input.fields {
        let attrs = &field.attrs;
        if let Some(serde) = field.serde_attr {
            errors.spanned(
                serde,
                "#[auth_backend] reads `#[option(...)]`, not `#[serde(...)]`: write `#[option(default)]`, `#[option(default = \"...\")]`, `#[option(rename = \"...\")]` or `#[option(skip)]`",
            );
        }
        if let (Some(default), Some(_)) = (&attrs.default, &attrs.skip) {
            errors.spanned(
                &default.path,
                "`default` cannot be combined with `skip`: a skipped field is not an option and always starts as `Default::default()`; remove `default`",
            );
        }
        if let (Some(rename), Some(_)) = (&attrs.rename, &attrs.skip) {
            errors.spanned(
                rename,
                "`rename` has no effect on a skipped field (it is not an option); remove `rename` or `skip`",
            );
        }
        if let Some(default) = &attrs.default
            && attrs.skip.is_none()
            && option_inner(field.ty).is_some()
        {
            errors.spanned(
                &default.path,
                "`default` is redundant on an `Option` field: a missing key is already `None`; remove `default`, or make the field non-optional to give it a default value",
            );
        }
        if attrs.skip.is_some() {
            continue;
        }
        if let Some((lit, span)) = attrs.default.as_ref().and_then(|d| d.value.as_ref())
            && option_inner(field.ty).is_none()
            && let Some(message) = default_mismatch(field.ty, &unraw(field.ident), lit)
        {
            errors.at(*span, message);
        }
        let name = field.yaml_name();
        if let Some(first) = seen.get(&name) {
            let message = format!(
                "two options are named `{name}` in YAML (fields `{}` and `{}`); give one of them another name with `#[option(rename = \"...\")]`",
                unraw(first),
                unraw(field.ident)
            );
            match &attrs.rename {
                Some(lit) => errors.spanned(lit, message),
                None => errors.spanned(field.ident, message),
            }
        } else {
            seen.insert(name, field.ident);
        }
    }
}

pub(crate) fn record(input: &Record<'_>, errors: &mut Errors) {
    let mut first_of: BTreeMap<String, &syn::Ident> = BTreeMap::new();
    let mut has_username = false;
    for field in &input.fields {
        let attrs = &field.attrs;
        let role = attrs.role.as_ref().map(|(r, _)| r);
        if role == Some(&Role::Username) {
            has_username = true;
        }
        for (lit, key, example) in [
            (&attrs.split, "split", "#[user(groups, split = \",\")]"),
            (
                &attrs.group_name,
                "group_name",
                "#[user(groups, group_name = \"cn\")]",
            ),
        ] {
            if let Some(lit) = lit
                && role != Some(&Role::Groups)
            {
                errors.spanned(
                    lit,
                    format!("`{key}` only applies to the groups field: write `{example}`, or remove `{key}`"),
                );
            }
        }
        let Some((role, span)) = &attrs.role else {
            continue;
        };
        let key = role.label();
        if let Some(first) = first_of.get(&key) {
            let what = match role {
                Role::Attr(name) => format!("attribute `{}`", name.value()),
                other => format!("`{}`", other.label()),
            };
            errors.at(
                *span,
                format!(
                    "two fields feed {what} (`{}` and `{}`); keep `#[user({key})]` on one of them",
                    unraw(first),
                    unraw(field.ident)
                ),
            );
        } else {
            first_of.insert(key.clone(), field.ident);
        }
        if !mappable(field.ty, role) {
            let accepted = if to_string_ok(role) {
                "`String`, `Option<String>`, `Vec<String>` or a type with `ToString` (`i64`, `u64`, ...)"
            } else {
                "`String`, `Option<String>`, `Vec<String>` or `Option<Vec<String>>`"
            };
            errors.spanned(
                field.ty,
                format!(
                    "`#[user({key})]` cannot take a field of type `{}`; it takes {accepted}: convert the value to a string when you build the record",
                    crate::ast::type_text(field.ty)
                ),
            );
        }
    }
    if !has_username && !input.fields.iter().any(|f| f.attrs.unknown_key) {
        errors.spanned(
            input.ident,
            format!(
                "`{}` has no username: mark the field holding it with `#[user(username)]`",
                input.ident
            ),
        );
    }
}

/// Whether the mapping runtime can take a field of type `ty` for `role`.
pub(crate) fn mappable(ty: &syn::Type, role: &Role) -> bool {
    if string_like(ty) {
        return true;
    }
    // Any other plain path type goes through `ToString`; rustc checks the bound, spanned on it.
    to_string_ok(role) && matches!(ty, syn::Type::Path(p) if p.qself.is_none())
}

/// The roles that also take any `ToString` type (an integer id, a timestamp version).
fn to_string_ok(role: &Role) -> bool {
    matches!(role, Role::Id | Role::CredentialVersion)
}

/// `String`, `Option<String>`, `Vec<String>` or `Option<Vec<String>>`.
pub(crate) fn string_like(ty: &syn::Type) -> bool {
    let inner = option_inner(ty).unwrap_or(ty);
    is_named(inner, "String") || vec_inner(inner).is_some_and(|t| is_named(t, "String"))
}

/// Why the literal `lit` cannot be the default of field `name` of type `ty`, for the types whose
/// YAML form the macro knows; `None` when it fits or the type is not one of them (every literal
/// default is deserialized again by `Registry::check_defaults` at start-up).
fn default_mismatch(ty: &syn::Type, name: &str, lit: &DefaultLit) -> Option<String> {
    let kind = known_kind(ty)?;
    let type_name = crate::ast::type_text(ty);
    let head = format!("the default of `{name}` (a `{type_name}`)");
    let given = lit.described();
    match kind {
        Known::Bool => match lit {
            DefaultLit::Bool(_) => None,
            DefaultLit::Str(s) if matches!(s.value().as_str(), "true" | "false") => Some(format!(
                "{head} must be a bool literal, not a string: write `#[option(default = {})]`",
                s.value()
            )),
            _ => Some(format!(
                "{head} must be `true` or `false`, not {given}: write `#[option(default = false)]`"
            )),
        },
        Known::Int { min, max } => {
            let value: Option<i128> = match lit {
                DefaultLit::UInt(v) => Some(i128::from(*v)),
                DefaultLit::Int(v) => Some(i128::from(*v)),
                _ => None,
            };
            match value {
                Some(v) if v < min || v > max => Some(format!(
                    "{head} is out of range: `{v}` does not fit in `{type_name}` ({min} to {max}); write a value in that range"
                )),
                Some(_) => None,
                None => {
                    let example = match lit {
                        DefaultLit::Str(s) if s.value().trim().parse::<i128>().is_ok() => {
                            s.value().trim().to_string()
                        }
                        _ => "10".to_string(),
                    };
                    Some(format!(
                        "{head} must be an integer literal, not {given}: write `#[option(default = {example})]`"
                    ))
                }
            }
        }
        Known::Float => match lit {
            DefaultLit::Float(_) | DefaultLit::UInt(_) | DefaultLit::Int(_) => None,
            _ => Some(format!(
                "{head} must be a number literal, not {given}: write e.g. `#[option(default = 0.5)]`"
            )),
        },
        Known::Text => match lit {
            DefaultLit::Str(_) => None,
            other => Some(format!(
                "{head} must be a string literal, not {given}: write `#[option(default = \"{}\")]`",
                other.yaml()
            )),
        },
        Known::Path => match lit {
            DefaultLit::Str(s) if !s.value().trim().is_empty() => None,
            DefaultLit::Str(_) => Some(format!(
                "{head} must not be empty: write a file path, e.g. `#[option(default = \"users.htpasswd\")]`"
            )),
            _ => Some(format!(
                "{head} must be a string literal holding a file path, not {given}: write e.g. `#[option(default = \"users.htpasswd\")]`"
            )),
        },
        Known::Duration => match lit {
            DefaultLit::Str(s) => auth_duration::parse(&s.value())
                .err()
                .map(|e| format!("{head} is not a duration: {e}")),
            DefaultLit::UInt(0) => None,
            DefaultLit::UInt(v) => Some(format!(
                "{head} needs a unit: write `#[option(default = \"{v}s\")]` or `\"{v}ms\"`"
            )),
            _ => Some(format!(
                "{head} must be a duration string, not {given}: write e.g. `#[option(default = \"30s\")]`"
            )),
        },
        Known::Secret => match lit {
            DefaultLit::Str(s) => {
                let v = s.value();
                if v.strip_prefix("env:").is_some_and(|n| n.trim().is_empty()) {
                    Some(format!(
                        "{head} names no variable after `env:`: write e.g. `#[option(default = \"env:LDAP_PASSWORD\")]`"
                    ))
                } else if v.strip_prefix("file:").is_some_and(|p| p.trim().is_empty()) {
                    Some(format!(
                        "{head} names no file after `file:`: write e.g. `#[option(default = \"file:/run/secrets/ldap\")]`"
                    ))
                } else {
                    None
                }
            }
            _ => Some(format!(
                "{head} must be a string literal (a literal secret, `env:NAME` or `file:PATH`), not {given}"
            )),
        },
    }
}

/// The option types whose literal defaults the macro checks.
enum Known {
    Bool,
    Int { min: i128, max: i128 },
    Float,
    Text,
    Path,
    Duration,
    Secret,
}

/// The known type `ty` names, judged by its path: `u32`, `String`, `Duration` or
/// `auth_core::Duration`... A type of another name, or `std::time::Duration` (another YAML
/// form), is not checked here.
fn known_kind(ty: &syn::Type) -> Option<Known> {
    let syn::Type::Path(p) = ty else { return None };
    if p.qself.is_some() {
        return None;
    }
    let last = p.path.segments.last()?;
    if !last.arguments.is_none() {
        return None;
    }
    let segments: Vec<String> = p
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    let plain = segments.len() == 1;
    let in_core = segments.len() == 2 && segments[0] == "auth_core";
    let in_std = |module: &str| {
        segments.len() >= 2
            && matches!(segments[0].as_str(), "std" | "core" | "alloc")
            && segments[segments.len() - 2] == module
    };
    let int = |min: i128, max: i128| Some(Known::Int { min, max });
    match last.ident.to_string().as_str() {
        "bool" if plain => Some(Known::Bool),
        "u8" if plain => int(0, u8::MAX.into()),
        "u16" if plain => int(0, u16::MAX.into()),
        "u32" if plain => int(0, u32::MAX.into()),
        "u64" | "usize" if plain => int(0, u64::MAX.into()),
        "i8" if plain => int(i8::MIN.into(), i8::MAX.into()),
        "i16" if plain => int(i16::MIN.into(), i16::MAX.into()),
        "i32" if plain => int(i32::MIN.into(), i32::MAX.into()),
        "i64" | "isize" if plain => int(i64::MIN.into(), i64::MAX.into()),
        "f32" | "f64" if plain => Some(Known::Float),
        "String" if plain || in_std("string") => Some(Known::Text),
        "PathBuf" if plain || in_std("path") => Some(Known::Path),
        "ConfigPath" if plain || in_core => Some(Known::Path),
        "Duration" if plain || in_core => Some(Known::Duration),
        "Secret" if plain || in_core => Some(Known::Secret),
        _ => None,
    }
}
