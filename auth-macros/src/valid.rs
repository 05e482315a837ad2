//! Rules across fields: what a single attribute cannot know on its own.

use std::collections::BTreeMap;

use proc_macro2::Span;

use crate::ast::{Backend, Record, is_named, option_inner, unraw, vec_inner};
use crate::attr::Role;
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
            let accepted = if *role == Role::Id {
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
    *role == Role::Id && matches!(ty, syn::Type::Path(p) if p.qself.is_none())
}

/// `String`, `Option<String>`, `Vec<String>` or `Option<Vec<String>>`.
pub(crate) fn string_like(ty: &syn::Type) -> bool {
    let inner = option_inner(ty).unwrap_or(ty);
    is_named(inner, "String") || vec_inner(inner).is_some_and(|t| is_named(t, "String"))
}
