//! Typed views of the macros' input, built by `from_syn`. Shape problems (an enum, a tuple
//! struct, generics) are errors here; attribute contents are parsed by [`crate::attr`].

use proc_macro2::TokenStream;
use syn::{Data, DeriveInput, Fields, Ident, Type};

use crate::attr::{self, BackendArgs, OptionAttrs, UserAttrs};
use crate::ctxt::Errors;

/// A struct under `#[auth_backend(...)]`.
pub(crate) struct Backend<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) args: BackendArgs,
    pub(crate) doc: String,
    pub(crate) fields: Vec<OptionField<'a>>,
    /// `Deserialize` in the struct's `#[derive(...)]`.
    pub(crate) derive_deserialize: Option<syn::Path>,
}

/// One field of a backend struct: an option unless skipped.
pub(crate) struct OptionField<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) ty: &'a Type,
    pub(crate) attrs: OptionAttrs,
    pub(crate) doc: String,
    /// A `#[serde(...)]` attribute, which this macro does not read.
    pub(crate) serde_attr: Option<&'a syn::Attribute>,
}

impl OptionField<'_> {
    /// The YAML key: the `rename`, else the field name.
    pub(crate) fn yaml_name(&self) -> String {
        match &self.attrs.rename {
            Some(lit) => lit.value(),
            None => unraw(self.ident),
        }
    }
}

impl<'a> Backend<'a> {
    /// `None` when the item has no usable shape; attribute errors still yield a value.
    pub(crate) fn from_syn(
        input: &'a DeriveInput,
        args: TokenStream,
        errors: &mut Errors,
    ) -> Option<Backend<'a>> {
        let args = attr::backend_args(args, errors);
        let fields = named_fields(input, "#[auth_backend]", "the backend's options", errors)?;
        let fields = fields
            .iter()
            .filter_map(|f| {
                Some(OptionField {
                    ident: f.ident.as_ref()?,
                    ty: &f.ty,
                    attrs: attr::option_attrs(&f.attrs, errors),
                    doc: attr::doc(&f.attrs),
                    serde_attr: attr::serde_attr(&f.attrs),
                })
            })
            .collect();
        Some(Backend {
            ident: &input.ident,
            args,
            doc: attr::doc(&input.attrs),
            fields,
            derive_deserialize: attr::derived_deserialize(&input.attrs),
        })
    }
}

/// A struct under `#[derive(UserRecord)]`.
pub(crate) struct Record<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) fields: Vec<RecordField<'a>>,
}

/// One field of a record, with what it feeds (if anything).
pub(crate) struct RecordField<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) ty: &'a Type,
    pub(crate) attrs: UserAttrs,
}

impl<'a> Record<'a> {
    pub(crate) fn from_syn(input: &'a DeriveInput, errors: &mut Errors) -> Option<Record<'a>> {
        let fields = named_fields(
            input,
            "#[derive(UserRecord)]",
            "the record's attributes",
            errors,
        )?;
        let fields = fields
            .iter()
            .filter_map(|f| {
                Some(RecordField {
                    ident: f.ident.as_ref()?,
                    ty: &f.ty,
                    attrs: attr::user_attrs(&f.attrs, errors),
                })
            })
            .collect();
        Some(Record {
            ident: &input.ident,
            fields,
        })
    }
}

/// The named fields of a non-generic struct, or an error naming the fix.
fn named_fields<'a>(
    input: &'a DeriveInput,
    what: &str,
    fields_are: &str,
    errors: &mut Errors,
) -> Option<&'a syn::punctuated::Punctuated<syn::Field, syn::token::Comma>> {
    let name = &input.ident;
    let generic = !input.generics.params.is_empty() || input.generics.where_clause.is_some();
    if generic {
        errors.spanned(
            &input.generics,
            format!(
                "{what} does not support generic structs; make `{name}` concrete (use a fixed type for each field)"
            ),
        );
    }
    let fields = match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(named) => Some(&named.named),
            Fields::Unnamed(unnamed) => {
                errors.spanned(
                    unnamed,
                    format!(
                        "{what} needs a struct with named fields ({fields_are}); `{name}` is a tuple struct: write `struct {name} {{ field: Type, ... }}`"
                    ),
                );
                None
            }
            Fields::Unit => {
                errors.spanned(
                    name,
                    format!(
                        "{what} needs a struct with named fields ({fields_are}); `{name}` is a unit struct: write `struct {name} {{}}` if it has none"
                    ),
                );
                None
            }
        },
        Data::Enum(e) => {
            errors.spanned(
                e.enum_token,
                format!("{what} goes on a struct with named fields ({fields_are}), not on an enum"),
            );
            None
        }
        Data::Union(u) => {
            errors.spanned(
                u.union_token,
                format!("{what} goes on a struct with named fields ({fields_are}), not on a union"),
            );
            None
        }
    };
    if generic { None } else { fields }
}

/// The identifier without a raw `r#` prefix.
pub(crate) fn unraw(ident: &Ident) -> String {
    let s = ident.to_string();
    s.strip_prefix("r#").map(str::to_string).unwrap_or(s)
}

/// `Some(T)` when `ty` is written `Option<T>` (any path ending in `Option`).
pub(crate) fn option_inner(ty: &Type) -> Option<&Type> {
    generic_arg(ty, "Option")
}

/// `Some(T)` when `ty` is written `Vec<T>`.
pub(crate) fn vec_inner(ty: &Type) -> Option<&Type> {
    generic_arg(ty, "Vec")
}

fn generic_arg<'t>(ty: &'t Type, wrapper: &str) -> Option<&'t Type> {
    let Type::Path(p) = ty else { return None };
    if p.qself.is_some() {
        return None;
    }
    let last = p.path.segments.last()?;
    if last.ident != wrapper {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first() {
        Some(syn::GenericArgument::Type(t)) if args.args.len() == 1 => Some(t),
        _ => None,
    }
}

/// Whether `ty` is written as the plain path `name` (its last segment, no generics).
pub(crate) fn is_named(ty: &Type, name: &str) -> bool {
    match ty {
        Type::Path(p) if p.qself.is_none() => p
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == name && s.arguments.is_none()),
        Type::Group(g) => is_named(&g.elem, name),
        _ => false,
    }
}

/// Whether `Secret` appears anywhere in `ty` (`Secret`, `Option<Secret>`, `BTreeMap<String, Secret>`).
pub(crate) fn mentions_secret(ty: &Type) -> bool {
    fn walk(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|tt| match tt {
            proc_macro2::TokenTree::Ident(i) => i == "Secret",
            proc_macro2::TokenTree::Group(g) => walk(g.stream()),
            _ => false,
        })
    }
    walk(quote::quote!(#ty))
}

/// The type as a reader would write it: `Option<Duration>`, `BTreeMap<String, Secret>`.
pub(crate) fn type_text(ty: &Type) -> String {
    let raw = quote::quote!(#ty).to_string();
    let chars: Vec<char> = raw.chars().collect();
    let mut out = String::with_capacity(raw.len());
    for (i, c) in chars.iter().enumerate() {
        if *c == ' ' {
            let word = |c: Option<&char>| c.is_some_and(|c| c.is_alphanumeric() || *c == '_');
            if word(out.chars().last().as_ref()) && word(chars.get(i + 1)) {
                out.push(' ');
            }
        } else {
            out.push(*c);
            if *c == ',' {
                out.push(' ');
            }
        }
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(s: &str) -> Type {
        syn::parse_str(s).unwrap()
    }

    #[test]
    fn types_read_as_written() {
        assert_eq!(type_text(&ty("Option<Duration>")), "Option<Duration>");
        assert_eq!(
            type_text(&ty("std::collections::BTreeMap<String, Secret>")),
            "std::collections::BTreeMap<String, Secret>"
        );
        assert_eq!(type_text(&ty("&'static str")), "&'static str");
        assert_eq!(type_text(&ty("Vec<(u8, u16)>")), "Vec<(u8, u16)>");
    }

    #[test]
    fn wrappers_and_secrets_are_recognised() {
        assert!(option_inner(&ty("Option<String>")).is_some());
        assert!(option_inner(&ty("std::option::Option<u8>")).is_some());
        assert!(option_inner(&ty("Vec<String>")).is_none());
        assert!(vec_inner(&ty("Vec<String>")).is_some());
        assert!(is_named(&ty("auth_core::Secret"), "Secret"));
        assert!(!is_named(&ty("Secret<u8>"), "Secret"));
        assert!(mentions_secret(&ty("Option<Secret>")));
        assert!(mentions_secret(&ty("BTreeMap<String, auth_core::Secret>")));
        assert!(!mentions_secret(&ty("SecretName")));
    }
}
