//! Parsing of the macros' own attributes: the `#[auth_backend(...)]` arguments, `#[option(...)]`
//! and `#[user(...)]` on fields, and doc comments. Every problem is pushed to [`Errors`] and the
//! parse goes on, so one pass reports them all.

use proc_macro2::{Span, TokenStream};
use syn::meta::ParseNestedMeta;
use syn::{Attribute, Expr, ExprLit, Lit, LitStr, Path, Token, UnOp};

use crate::ctxt::{Errors, did_you_mean, one_of};

/// The arguments of `#[auth_backend(type = "...", build = path, accepts = [...], needs = [...])]`.
#[derive(Default)]
pub(crate) struct BackendArgs {
    pub(crate) type_name: Option<LitStr>,
    pub(crate) build: Option<Path>,
    /// The credential kinds, as `CredentialKind` variant names; `None` when `accepts` is absent.
    pub(crate) accepts: Option<Vec<&'static str>>,
    /// The shared services, as `Service` variant names; empty when `needs` is absent.
    pub(crate) needs: Option<Vec<&'static str>>,
    /// A `type` key or an unknown key was written (so "missing `type`" would only repeat an
    /// error already reported).
    pub(crate) type_attempted: bool,
}

const BACKEND_KEYS: &[&str] = &["type", "build", "accepts", "needs"];

/// The kinds `accepts = [...]` takes, and the `CredentialKind` variant each one names.
const KINDS: &[(&str, &str)] = &[
    ("password", "Password"),
    ("bearer", "Bearer"),
    ("api_key", "ApiKey"),
    ("redirect", "Redirect"),
];

/// What `accepts = [...]` lists.
const ACCEPTS: NameList = NameList {
    key: "accepts",
    noun: "credential kind",
    example: "bearer",
    table: KINDS,
    empty: Some("a backend that accepts none would never run"),
};

/// The services `needs = [...]` takes, and the `Service` variant each one names.
const SERVICES: &[(&str, &str)] = &[("user_store", "UserStore")];

/// What `needs = [...]` lists.
const NEEDS: NameList = NameList {
    key: "needs",
    noun: "service",
    example: "user_store",
    table: SERVICES,
    empty: None,
};

/// A `key = [name, ...]` argument whose names map to enum variants.
struct NameList {
    key: &'static str,
    noun: &'static str,
    example: &'static str,
    /// (name as written, variant).
    table: &'static [(&'static str, &'static str)],
    /// Why an empty list is refused; `None`: an empty list is allowed.
    empty: Option<&'static str>,
}

/// Parses the attribute's arguments; `args_span` is where "missing `type`" points.
pub(crate) fn backend_args(args: TokenStream, errors: &mut Errors) -> BackendArgs {
    let mut out = BackendArgs::default();
    let parser = syn::meta::parser(|meta| {
        let key = path_name(&meta.path);
        match key.as_str() {
            "type" => {
                out.type_attempted = true;
                let value: Expr = meta.value()?.parse()?;
                match string_lit(&value) {
                    Some(_) if out.type_name.is_some() => errors.spanned(
                        &meta.path,
                        format!(
                            "duplicate `type` (already `{}`); a backend has exactly one type name, remove one",
                            out.type_name.as_ref().map(LitStr::value).unwrap_or_default()
                        ),
                    ),
                    Some(lit) => {
                        let name = lit.value();
                        if name.is_empty() {
                            errors.spanned(
                                &lit,
                                "`type` must not be empty; write the name YAML uses, e.g. `type = \"ldap\"`",
                            );
                        } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
                            errors.spanned(
                                &lit,
                                "`type` must not contain whitespace; write the name YAML uses, e.g. `type = \"ldap\"`",
                            );
                        }
                        out.type_name = Some(lit);
                    }
                    None => errors.spanned(
                        &value,
                        format!(
                            "`type` takes a string literal: `type = \"{}\"`",
                            suggestion_text(&value, "my_backend")
                        ),
                    ),
                }
            }
            "build" => {
                let value: Expr = meta.value()?.parse()?;
                match value {
                    Expr::Path(p) if p.qself.is_none() && out.build.is_some() => errors.spanned(
                        &meta.path,
                        "duplicate `build`; a backend has one build function, remove one",
                    ),
                    Expr::Path(p) if p.qself.is_none() => out.build = Some(p.path),
                    other => errors.spanned(
                        &other,
                        "`build` takes the path of a function `fn(Self, &auth_core::BuildContext) -> Result<Arc<dyn auth_core::Backend>, auth_core::BuildError>`, e.g. `build = Self::build`",
                    ),
                }
            }
            "accepts" => {
                let value: Expr = meta.value()?.parse()?;
                if out.accepts.is_some() {
                    errors.spanned(
                        &meta.path,
                        "duplicate `accepts`; list every kind in one `accepts = [...]`",
                    );
                } else {
                    out.accepts = Some(listed_names(&value, &ACCEPTS, errors));
                }
            }
            "needs" => {
                let value: Expr = meta.value()?.parse()?;
                if out.needs.is_some() {
                    errors.spanned(
                        &meta.path,
                        "duplicate `needs`; list every service in one `needs = [...]`",
                    );
                } else {
                    out.needs = Some(listed_names(&value, &NEEDS, errors));
                }
            }
            other => {
                out.type_attempted = true;
                errors.spanned(
                    &meta.path,
                    format!(
                        "unknown `auth_backend` option `{other}`; expected {}{}",
                        one_of(BACKEND_KEYS),
                        did_you_mean(other, BACKEND_KEYS)
                    ),
                );
                skip_value(&meta)?;
            }
        }
        Ok(())
    });
    if let Err(e) = syn::parse::Parser::parse2(parser, args) {
        errors.push(e);
    }
    out
}

/// The variants named by `key = [a, b]` (`accepts`, `needs`), each name reported when unknown
/// or repeated.
fn listed_names(value: &Expr, list: &NameList, errors: &mut Errors) -> Vec<&'static str> {
    let NameList {
        key,
        noun,
        example,
        table,
        empty,
    } = list;
    let names: Vec<&str> = table.iter().map(|(name, _)| *name).collect();
    let Expr::Array(array) = value else {
        errors.spanned(
            value,
            format!(
                "`{key}` takes a list of {noun}s among {}, e.g. `{key} = [{example}]`",
                one_of(&names)
            ),
        );
        return Vec::new();
    };
    if let Some(why) = empty
        && array.elems.is_empty()
    {
        errors.spanned(
            array,
            format!(
                "`{key}` must name at least one {noun} ({}): {why}",
                one_of(&names)
            ),
        );
    }
    let mut variants = Vec::new();
    for elem in &array.elems {
        let ident = match elem {
            Expr::Path(p) if p.qself.is_none() => p.path.get_ident().map(|i| i.to_string()),
            _ => None,
        };
        let Some(ident) = ident else {
            errors.spanned(
                elem,
                format!("a {noun} is written as a bare name: {}", one_of(&names)),
            );
            continue;
        };
        match table.iter().find(|(name, _)| *name == ident) {
            Some((_, variant)) if variants.contains(variant) => errors.spanned(
                elem,
                format!("`{ident}` is listed twice in `{key}`; remove one"),
            ),
            Some((_, variant)) => variants.push(*variant),
            None => errors.spanned(
                elem,
                format!(
                    "unknown {noun} `{ident}`; expected {}{}",
                    one_of(&names),
                    did_you_mean(&ident, &names)
                ),
            ),
        }
    }
    variants
}

/// A literal default, in YAML form.
pub(crate) enum DefaultLit {
    Str(LitStr),
    /// Non-negative integer.
    UInt(u64),
    Int(i64),
    Float(f64),
    Bool(bool),
}

/// `#[option(default)]` or `#[option(default = <literal>)]`.
pub(crate) struct DefaultSpec {
    pub(crate) path: Path,
    pub(crate) value: Option<(DefaultLit, Span)>,
}

/// The `#[option(...)]` attributes of one field.
#[derive(Default)]
pub(crate) struct OptionAttrs {
    pub(crate) default: Option<DefaultSpec>,
    pub(crate) rename: Option<LitStr>,
    pub(crate) skip: Option<Path>,
}

const OPTION_KEYS: &[&str] = &["default", "rename", "skip"];

pub(crate) fn option_attrs(attrs: &[Attribute], errors: &mut Errors) -> OptionAttrs {
    let mut out = OptionAttrs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("option")) {
        let result = attr.parse_nested_meta(|meta| {
            let key = path_name(&meta.path);
            let duplicate = |errors: &mut Errors| {
                errors.spanned(
                    &meta.path,
                    format!("duplicate `{key}` in `#[option(...)]`; remove one"),
                )
            };
            match key.as_str() {
                "default" => {
                    let value = if meta.input.peek(Token![=]) {
                        let expr: Expr = meta.value()?.parse()?;
                        match default_lit(&expr) {
                            Ok(lit) => Some((lit, span_of(&expr))),
                            Err(e) => {
                                errors.push(e);
                                None
                            }
                        }
                    } else {
                        None
                    };
                    if out.default.is_some() {
                        duplicate(errors);
                    } else {
                        out.default = Some(DefaultSpec {
                            path: meta.path.clone(),
                            value,
                        });
                    }
                }
                "rename" => {
                    let expr: Expr = meta.value()?.parse()?;
                    match string_lit(&expr) {
                        Some(_) if out.rename.is_some() => duplicate(errors),
                        Some(lit) if lit.value().is_empty() => {
                            errors.spanned(&lit, "`rename` must not be empty")
                        }
                        Some(lit) => out.rename = Some(lit),
                        None => errors.spanned(
                            &expr,
                            format!(
                                "`rename` takes a string literal: `rename = \"{}\"`",
                                suggestion_text(&expr, "yaml_key")
                            ),
                        ),
                    }
                }
                "skip" => {
                    if out.skip.is_some() {
                        duplicate(errors);
                    } else {
                        out.skip = Some(meta.path.clone());
                    }
                }
                other => {
                    errors.spanned(
                        &meta.path,
                        format!(
                            "unknown `option` key `{other}`; expected {}{}",
                            one_of(OPTION_KEYS),
                            did_you_mean(other, OPTION_KEYS)
                        ),
                    );
                    skip_value(&meta)?;
                }
            }
            Ok(())
        });
        if let Err(e) = result {
            errors.push(e);
        }
    }
    out
}

fn default_lit(expr: &Expr) -> syn::Result<DefaultLit> {
    let bad = || {
        syn::Error::new_spanned(
            expr,
            "`default` takes a literal in YAML form: a string (`default = \"5s\"`), an integer, a float or a bool; or write `#[option(default)]` for `Default::default()`",
        )
    };
    match expr {
        Expr::Lit(ExprLit { lit, .. }) => match lit {
            Lit::Str(s) => Ok(DefaultLit::Str(s.clone())),
            Lit::Int(i) => Ok(DefaultLit::UInt(i.base10_parse()?)),
            Lit::Float(f) => Ok(DefaultLit::Float(f.base10_parse()?)),
            Lit::Bool(b) => Ok(DefaultLit::Bool(b.value)),
            _ => Err(bad()),
        },
        Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => match &*u.expr {
            Expr::Lit(ExprLit {
                lit: Lit::Int(i), ..
            }) => {
                let v: i64 = format!("-{}", i.base10_digits())
                    .parse()
                    .map_err(|_| syn::Error::new_spanned(expr, "integer default out of range"))?;
                Ok(DefaultLit::Int(v))
            }
            Expr::Lit(ExprLit {
                lit: Lit::Float(f), ..
            }) => Ok(DefaultLit::Float(-f.base10_parse::<f64>()?)),
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

impl DefaultLit {
    /// The literal as a message names it: ``the string `"x"` ``, ``the integer `5` ``.
    pub(crate) fn described(&self) -> String {
        match self {
            DefaultLit::Str(s) => format!("the string `{:?}`", s.value()),
            DefaultLit::UInt(v) => format!("the integer `{v}`"),
            DefaultLit::Int(v) => format!("the integer `{v}`"),
            DefaultLit::Float(v) => format!("the number `{v}`"),
            DefaultLit::Bool(v) => format!("`{v}`"),
        }
    }

    /// The value as it would be written in YAML, for the option docs.
    pub(crate) fn yaml(&self) -> String {
        match self {
            DefaultLit::Str(s) => s.value(),
            DefaultLit::UInt(v) => v.to_string(),
            DefaultLit::Int(v) => v.to_string(),
            DefaultLit::Float(v) => v.to_string(),
            DefaultLit::Bool(v) => v.to_string(),
        }
    }
}

/// What a `#[user(...)]` field feeds.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Role {
    Id,
    Username,
    Email,
    Name,
    Groups,
    CredentialVersion,
    Attr(LitStr),
}

impl Role {
    pub(crate) fn label(&self) -> String {
        match self {
            Role::Id => "id".into(),
            Role::Username => "username".into(),
            Role::Email => "email".into(),
            Role::Name => "name".into(),
            Role::Groups => "groups".into(),
            Role::CredentialVersion => "credential_version".into(),
            Role::Attr(name) => format!("attr = \"{}\"", name.value()),
        }
    }
}

/// The `#[user(...)]` attributes of one field.
#[derive(Default)]
pub(crate) struct UserAttrs {
    pub(crate) role: Option<(Role, Span)>,
    pub(crate) split: Option<LitStr>,
    pub(crate) group_name: Option<LitStr>,
    /// An unknown key was reported (it may have been a misspelled `username`).
    pub(crate) unknown_key: bool,
}

const USER_KEYS: &[&str] = &[
    "id",
    "username",
    "email",
    "name",
    "groups",
    "credential_version",
    "attr",
    "split",
    "group_name",
];

pub(crate) fn user_attrs(attrs: &[Attribute], errors: &mut Errors) -> UserAttrs {
    let mut out = UserAttrs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("user")) {
        let result = attr.parse_nested_meta(|meta| {
            let key = path_name(&meta.path);
            let span = span_of(&meta.path);
            let mut set_role = |role: Role, errors: &mut Errors| match &out.role {
                Some((existing, _)) => errors.at(
                    span,
                    format!(
                        "this field already feeds `{}`; a field feeds one user field, so put `{}` on another field",
                        existing.label(),
                        role.label()
                    ),
                ),
                None => out.role = Some((role, span)),
            };
            match key.as_str() {
                "id" => set_role(Role::Id, errors),
                "username" => set_role(Role::Username, errors),
                "email" => set_role(Role::Email, errors),
                "name" => set_role(Role::Name, errors),
                "groups" => set_role(Role::Groups, errors),
                "credential_version" => set_role(Role::CredentialVersion, errors),
                "attr" => {
                    let expr: Expr = meta.value()?.parse()?;
                    match string_lit(&expr) {
                        Some(lit) if lit.value().is_empty() => {
                            errors.spanned(&lit, "`attr` must not be empty")
                        }
                        Some(lit) => set_role(Role::Attr(lit), errors),
                        None => errors.spanned(
                            &expr,
                            format!(
                                "`attr` takes a string literal: `attr = \"{}\"`",
                                suggestion_text(&expr, "department")
                            ),
                        ),
                    }
                }
                "split" | "group_name" => {
                    let expr: Expr = meta.value()?.parse()?;
                    let slot = if key == "split" {
                        &mut out.split
                    } else {
                        &mut out.group_name
                    };
                    match string_lit(&expr) {
                        Some(_) if slot.is_some() => errors.spanned(
                            &meta.path,
                            format!("duplicate `{key}` in `#[user(...)]`; remove one"),
                        ),
                        Some(lit) if lit.value().is_empty() => {
                            errors.spanned(&lit, format!("`{key}` must not be empty"))
                        }
                        Some(lit) => *slot = Some(lit),
                        None => errors.spanned(
                            &expr,
                            format!(
                                "`{key}` takes a string literal: `{key} = \"{}\"`",
                                if key == "split" { "," } else { "cn" }
                            ),
                        ),
                    }
                }
                other => {
                    out.unknown_key = true;
                    errors.spanned(
                        &meta.path,
                        format!(
                            "unknown `user` key `{other}`; expected {}{}",
                            one_of(USER_KEYS),
                            did_you_mean(other, USER_KEYS)
                        ),
                    );
                    skip_value(&meta)?;
                }
            }
            Ok(())
        });
        if let Err(e) = result {
            errors.push(e);
        }
    }
    out
}

/// The `Deserialize` in a `#[derive(...)]` list, if any (the macro generates that impl itself).
pub(crate) fn derived_deserialize(attrs: &[Attribute]) -> Option<Path> {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("derive"))
        .filter_map(|a| {
            a.parse_args_with(syn::punctuated::Punctuated::<Path, Token![,]>::parse_terminated)
                .ok()
        })
        .flatten()
        .find(|p| p.segments.last().is_some_and(|s| s.ident == "Deserialize"))
}

/// The first `#[serde(...)]` attribute, if any.
pub(crate) fn serde_attr(attrs: &[Attribute]) -> Option<&Attribute> {
    attrs.iter().find(|a| a.path().is_ident("serde"))
}

/// The `///` doc comment: lines joined, one leading space of each removed, trimmed.
pub(crate) fn doc(attrs: &[Attribute]) -> String {
    let mut lines = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("doc")) {
        if let syn::Meta::NameValue(nv) = &attr.meta
            && let Some(lit) = string_lit(&nv.value)
        {
            let line = lit.value();
            lines.push(
                line.strip_prefix(' ')
                    .unwrap_or(&line)
                    .trim_end()
                    .to_string(),
            );
        }
    }
    lines.join("\n").trim().to_string()
}

fn path_name(path: &Path) -> String {
    path.get_ident()
        .map(|i| i.to_string())
        .unwrap_or_else(|| quote::quote!(#path).to_string().replace(' ', ""))
}

fn string_lit(expr: &Expr) -> Option<LitStr> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Some(s.clone()),
        Expr::Group(g) => string_lit(&g.expr),
        _ => None,
    }
}

/// The user's value as text, to show the quoted form they meant.
fn suggestion_text(expr: &Expr, fallback: &str) -> String {
    match expr {
        Expr::Path(p) => p
            .path
            .get_ident()
            .map(|i| i.to_string())
            .unwrap_or_else(|| fallback.to_string()),
        Expr::Lit(ExprLit { lit, .. }) => match lit {
            Lit::Int(i) => i.base10_digits().to_string(),
            Lit::Bool(b) => b.value.to_string(),
            _ => fallback.to_string(),
        },
        _ => fallback.to_string(),
    }
}

fn span_of(tokens: &impl quote::ToTokens) -> Span {
    syn::spanned::Spanned::span(&tokens.to_token_stream())
}

/// Consumes an unknown key's value (`= expr` or `(...)`) so parsing can go on to the next key.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        let _: Expr = meta.value()?.parse()?;
    } else if meta.input.peek(syn::token::Paren) {
        let _: proc_macro2::TokenTree = meta.input.parse()?;
    }
    Ok(())
}
