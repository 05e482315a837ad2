//! Code generation. Everything generated sits in `const _: () = { ... };` and names auth-core
//! items through `::auth_core::__private`, so the user's crate needs no other dependency.

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::DeriveInput;

use crate::ast::{self, Backend, Record, option_inner};
use crate::attr::{DefaultLit, Role};
use crate::ctxt::Errors;
use crate::{fallback, valid};

/// `#[auth_backend(...)]` on `input`.
pub(crate) fn backend(args: TokenStream, input: TokenStream) -> TokenStream {
    let parsed: DeriveInput = match syn::parse2(input.clone()) {
        Ok(parsed) => parsed,
        Err(_) => {
            let error = syn::Error::new_spanned(
                &input,
                "#[auth_backend] goes on a struct with named fields (the backend's options)",
            )
            .to_compile_error();
            return quote!(#input #error);
        }
    };
    let mut errors = Errors::default();
    let backend = Backend::from_syn(&parsed, args, &mut errors);
    if let Some(backend) = &backend {
        valid::backend(backend, &mut errors);
    }
    match (backend, errors.into_error()) {
        (Some(backend), None) => {
            let item = fallback::strip_option_attrs(&parsed);
            let generated = backend_impls(&backend);
            quote!(#item #generated)
        }
        (backend, error) => fallback::backend(
            &parsed,
            backend.is_some(),
            error.unwrap_or_else(|| {
                syn::Error::new_spanned(&parsed.ident, "#[auth_backend] cannot expand this item")
            }),
        ),
    }
}

fn backend_impls(input: &Backend<'_>) -> TokenStream {
    let ident = input.ident;
    let type_name = input
        .args
        .type_name
        .as_ref()
        .map(syn::LitStr::value)
        .unwrap_or_default();
    let description = &input.doc;
    let options: Vec<_> = input
        .fields
        .iter()
        .filter(|f| f.attrs.skip.is_none())
        .collect();
    let yaml_names: Vec<String> = options.iter().map(|f| f.yaml_name()).collect();
    let variants: Vec<_> = (0..options.len())
        .map(|i| format_ident!("__field{}", i))
        .collect();
    let slots: Vec<_> = (0..options.len())
        .map(|i| format_ident!("__slot{}", i))
        .collect();
    let option_types: Vec<_> = options.iter().map(|f| f.ty).collect();

    let field_values = input.fields.iter().map(|f| {
        let name = f.ident;
        let ty = f.ty;
        if f.attrs.skip.is_some() {
            return quote!(#name: ::auth_core::__private::std::default::Default::default());
        }
        let index = options
            .iter()
            .position(|o| o.ident == f.ident)
            .unwrap_or_default();
        let slot = &slots[index];
        let yaml = f.yaml_name();
        let missing = match &f.attrs.default {
            Some(spec) => match &spec.value {
                None => quote!(::auth_core::__private::std::default::Default::default()),
                Some((lit, span)) => {
                    let de = default_deserializer(lit);
                    quote_spanned! {*span=>
                        <#ty as ::auth_core::__private::serde::Deserialize>::deserialize(#de)
                            .map_err(|e| <__E as ::auth_core::__private::serde::de::Error>::custom(
                                ::auth_core::__private::std::format_args!(
                                    "the default of option `{}` is invalid: {}", #yaml, e
                                ),
                            ))?
                    }
                }
            },
            None if option_inner(ty).is_some() => {
                quote!(::auth_core::__private::std::option::Option::None)
            }
            None => quote! {
                return ::auth_core::__private::std::result::Result::Err(
                    <__E as ::auth_core::__private::serde::de::Error>::missing_field(#yaml),
                )
            },
        };
        quote! {
            #name: match #slot {
                ::auth_core::__private::std::option::Option::Some(value) => value,
                ::auth_core::__private::std::option::Option::None => #missing,
            }
        }
    });

    let option_docs = options.iter().map(|f| {
        let name = f.yaml_name();
        let ty = ast::type_text(f.ty);
        let optional = option_inner(f.ty).is_some() || f.attrs.default.is_some();
        let required = !optional;
        let default = match f.attrs.default.as_ref().and_then(|d| d.value.as_ref()) {
            Some((lit, _)) => {
                let text = lit.yaml();
                quote!(::auth_core::__private::std::option::Option::Some(#text))
            }
            None => quote!(::auth_core::__private::std::option::Option::None),
        };
        let secret = ast::mentions_secret(f.ty);
        let doc = &f.doc;
        quote! {
            ::auth_core::registry::OptionDoc {
                name: #name,
                ty: #ty,
                required: #required,
                default: #default,
                secret: #secret,
                doc: #doc,
            }
        }
    });

    let debug_fields = options.iter().map(|f| {
        let name = f.ident;
        let yaml = f.yaml_name();
        quote! {
            .field(#yaml, (&::auth_core::__private::DebugField(&self.0.#name)).__auth_debug())
        }
    });

    let accepts: Vec<syn::Ident> = input
        .args
        .accepts
        .as_deref()
        .unwrap_or(&["Password"])
        .iter()
        .map(|variant| format_ident!("{}", variant))
        .collect();
    let needs: Vec<syn::Ident> = input
        .args
        .needs
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|variant| format_ident!("{}", variant))
        .collect();
    let build = match &input.args.build {
        Some(path) => {
            let path = self_to_ident(path, ident);
            quote_spanned! {syn::spanned::Spanned::span(&path)=>
                let __build: fn(
                    #ident,
                    &::auth_core::registry::BuildContext,
                ) -> ::auth_core::__private::std::result::Result<
                    ::auth_core::__private::std::sync::Arc<dyn ::auth_core::Backend>,
                    ::auth_core::registry::BuildError,
                > = #path;
                let __backend = __build(self.0, __ctx)?;
            }
        }
        None => quote_spanned! {ident.span()=>
            let _ = __ctx;
            let __backend = ::auth_core::__private::IsBackend::into_backend(self.0);
        },
    };

    // Every literal default, deserialized again by `Registry::check_defaults`: the compile-time
    // check trusts the type's name, this one the type itself. Secrets are left out: resolving
    // `env:`/`file:` reads the environment or a file.
    let default_checks = options.iter().filter_map(|f| {
        let (lit, span) = f.attrs.default.as_ref()?.value.as_ref()?;
        if ast::mentions_secret(f.ty) {
            return None;
        }
        let ty = f.ty;
        let yaml = f.yaml_name();
        let text = lit.yaml();
        let de = default_deserializer(lit);
        Some(quote_spanned! {*span=>
            if let ::auth_core::__private::std::result::Result::Err(e) =
                <#ty as ::auth_core::__private::serde::Deserialize>::deserialize(#de)
            {
                __invalid.push(::auth_core::__private::InvalidDefault {
                    option: #yaml,
                    default: #text,
                    message: ::auth_core::__private::std::string::ToString::to_string(&e),
                });
            }
        })
    });

    let unknown = if yaml_names.is_empty() {
        let message = format!("unknown field `{{}}`: backend type `{type_name}` takes no options");
        quote! {
            <__E as ::auth_core::__private::serde::de::Error>::custom(
                ::auth_core::__private::std::format_args!(#message, other),
            )
        }
    } else {
        quote!(<__E as ::auth_core::__private::serde::de::Error>::unknown_field(other, __FIELDS))
    };
    let struct_name = ident.to_string();
    let expecting = format!("the options of backend type `{type_name}` (a map)");

    quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals, non_camel_case_types, unused_qualifications, clippy::all)]
        const _: () = {
            use ::auth_core::__private::{DebugOpaque as _, DebugViaDebug as _};

            impl<'de> ::auth_core::__private::serde::Deserialize<'de> for #ident {
                fn deserialize<__D>(
                    deserializer: __D,
                ) -> ::auth_core::__private::std::result::Result<Self, __D::Error>
                where
                    __D: ::auth_core::__private::serde::Deserializer<'de>,
                {
                    const __FIELDS: &[&str] = &[#(#yaml_names),*];

                    enum __Field { #(#variants,)* }

                    struct __FieldVisitor;

                    impl<'de> ::auth_core::__private::serde::de::Visitor<'de> for __FieldVisitor {
                        type Value = __Field;

                        fn expecting(
                            &self,
                            f: &mut ::auth_core::__private::std::fmt::Formatter<'_>,
                        ) -> ::auth_core::__private::std::fmt::Result {
                            f.write_str("an option name")
                        }

                        fn visit_str<__E>(self, value: &str) -> ::auth_core::__private::std::result::Result<__Field, __E>
                        where
                            __E: ::auth_core::__private::serde::de::Error,
                        {
                            match value {
                                #(#yaml_names => ::auth_core::__private::std::result::Result::Ok(__Field::#variants),)*
                                other => ::auth_core::__private::std::result::Result::Err(#unknown),
                            }
                        }

                        fn visit_bytes<__E>(self, value: &[u8]) -> ::auth_core::__private::std::result::Result<__Field, __E>
                        where
                            __E: ::auth_core::__private::serde::de::Error,
                        {
                            self.visit_str(&::auth_core::__private::std::string::String::from_utf8_lossy(value))
                        }
                    }

                    impl<'de> ::auth_core::__private::serde::Deserialize<'de> for __Field {
                        fn deserialize<__D2>(
                            deserializer: __D2,
                        ) -> ::auth_core::__private::std::result::Result<Self, __D2::Error>
                        where
                            __D2: ::auth_core::__private::serde::Deserializer<'de>,
                        {
                            deserializer.deserialize_identifier(__FieldVisitor)
                        }
                    }

                    /// The options found, before defaults and required keys are applied.
                    struct __Slots {
                        #(#slots: ::auth_core::__private::std::option::Option<#option_types>,)*
                    }

                    fn __finish<__E>(
                        __Slots { #(#slots),* }: __Slots,
                    ) -> ::auth_core::__private::std::result::Result<#ident, __E>
                    where
                        __E: ::auth_core::__private::serde::de::Error,
                    {
                        ::auth_core::__private::std::result::Result::Ok(#ident {
                            #(#field_values,)*
                        })
                    }

                    struct __Visitor;

                    impl<'de> ::auth_core::__private::serde::de::Visitor<'de> for __Visitor {
                        type Value = __Slots;

                        fn expecting(
                            &self,
                            f: &mut ::auth_core::__private::std::fmt::Formatter<'_>,
                        ) -> ::auth_core::__private::std::fmt::Result {
                            f.write_str(#expecting)
                        }

                        fn visit_map<__A>(
                            self,
                            mut map: __A,
                        ) -> ::auth_core::__private::std::result::Result<__Slots, __A::Error>
                        where
                            __A: ::auth_core::__private::serde::de::MapAccess<'de>,
                        {
                            #(
                                let mut #slots: ::auth_core::__private::std::option::Option<#option_types> =
                                    ::auth_core::__private::std::option::Option::None;
                            )*
                            while let ::auth_core::__private::std::option::Option::Some(key) =
                                ::auth_core::__private::serde::de::MapAccess::next_key::<__Field>(&mut map)?
                            {
                                match key {
                                    #(
                                        __Field::#variants => {
                                            if #slots.is_some() {
                                                return ::auth_core::__private::std::result::Result::Err(
                                                    <__A::Error as ::auth_core::__private::serde::de::Error>::duplicate_field(#yaml_names),
                                                );
                                            }
                                            #slots = ::auth_core::__private::std::option::Option::Some(
                                                ::auth_core::__private::next_option::<#option_types, __A>(&mut map)?,
                                            );
                                        }
                                    )*
                                }
                            }
                            ::auth_core::__private::std::result::Result::Ok(__Slots { #(#slots),* })
                        }
                    }

                    // Missing keys and defaults are settled once the mapping is read and the
                    // deserializer has left it: a format that locates an error by where it
                    // stands (serde-saphyr) then blames the mapping as a whole (the entry's
                    // `options:`), not the last key present.
                    let slots = ::auth_core::__private::serde::Deserializer::deserialize_struct(
                        deserializer,
                        #struct_name,
                        __FIELDS,
                        __Visitor,
                    )?;
                    __finish(slots)
                }
            }

            struct __Factory(#ident);

            impl ::auth_core::__private::std::fmt::Debug for __Factory {
                fn fmt(
                    &self,
                    f: &mut ::auth_core::__private::std::fmt::Formatter<'_>,
                ) -> ::auth_core::__private::std::fmt::Result {
                    f.debug_struct(#struct_name)
                        .field("type", &#type_name)
                        #(#debug_fields)*
                        .finish()
                }
            }

            impl ::auth_core::registry::BackendFactory for __Factory {
                fn build(
                    self: ::auth_core::__private::std::boxed::Box<Self>,
                    __ctx: &::auth_core::registry::BuildContext,
                ) -> ::auth_core::__private::std::result::Result<
                    ::auth_core::__private::std::sync::Arc<dyn ::auth_core::Backend>,
                    ::auth_core::registry::BuildError,
                > {
                    #build
                    ::auth_core::__private::accepting(__backend, __ACCEPTS, #type_name)
                }
            }

            const __ACCEPTS: &[::auth_core::__private::CredentialKind] =
                &[#(::auth_core::__private::CredentialKind::#accepts),*];

            fn __check_defaults() -> ::auth_core::__private::std::vec::Vec<::auth_core::__private::InvalidDefault> {
                type __E = ::auth_core::__private::serde::de::value::Error;
                #[allow(unused_mut)]
                let mut __invalid = ::auth_core::__private::std::vec::Vec::new();
                #(#default_checks)*
                __invalid
            }

            fn __parse(
                deserializer: &mut dyn ::auth_core::__private::erased_serde::Deserializer<'_>,
            ) -> ::auth_core::__private::std::result::Result<
                ::auth_core::__private::std::boxed::Box<dyn ::auth_core::registry::BackendFactory>,
                ::auth_core::__private::erased_serde::Error,
            > {
                let options: #ident = ::auth_core::__private::erased_serde::deserialize(deserializer)?;
                ::auth_core::__private::std::result::Result::Ok(
                    ::auth_core::__private::std::boxed::Box::new(__Factory(options)),
                )
            }

            ::auth_core::__private::inventory::submit! {
                ::auth_core::registry::BackendRegistration {
                    type_name: #type_name,
                    description: #description,
                    options: &[#(#option_docs),*],
                    parse: __parse,
                    rust_path: ::auth_core::__private::std::concat!(
                        ::auth_core::__private::std::module_path!(), "::", #struct_name
                    ),
                    accepts: __ACCEPTS,
                    needs: &[#(::auth_core::__private::Service::#needs),*],
                    check_defaults: __check_defaults,
                }
            }
        };
    }
}

fn default_deserializer(lit: &DefaultLit) -> TokenStream {
    let value = quote!(::auth_core::__private::serde::de::value);
    match lit {
        DefaultLit::Str(s) => quote!(#value::StrDeserializer::<__E>::new(#s)),
        DefaultLit::UInt(v) => {
            let v = Literal::u64_suffixed(*v);
            quote!(#value::U64Deserializer::<__E>::new(#v))
        }
        DefaultLit::Int(v) => {
            let v = Literal::i64_suffixed(*v);
            quote!(#value::I64Deserializer::<__E>::new(#v))
        }
        DefaultLit::Float(v) => {
            let v = Literal::f64_suffixed(*v);
            quote!(#value::F64Deserializer::<__E>::new(#v))
        }
        DefaultLit::Bool(v) => quote!(#value::BoolDeserializer::<__E>::new(#v)),
    }
}

/// `Self::build` names the factory inside the generated impl; point it at the struct instead.
fn self_to_ident(path: &syn::Path, ident: &syn::Ident) -> syn::Path {
    let mut path = path.clone();
    if let Some(first) = path.segments.first_mut()
        && first.ident == "Self"
    {
        first.ident = syn::Ident::new(&ident.to_string(), first.ident.span());
    }
    path
}

/// `#[derive(UserRecord)]` on `input`.
pub(crate) fn record(input: TokenStream) -> TokenStream {
    let parsed: DeriveInput = match syn::parse2(input) {
        Ok(parsed) => parsed,
        Err(e) => return e.to_compile_error(),
    };
    let mut errors = Errors::default();
    let record = Record::from_syn(&parsed, &mut errors);
    if let Some(record) = &record {
        valid::record(record, &mut errors);
    }
    match (record, errors.into_error()) {
        (Some(record), None) => record_impl(&record),
        (_, error) => fallback::record(
            &parsed,
            error.unwrap_or_else(|| {
                syn::Error::new_spanned(
                    &parsed.ident,
                    "#[derive(UserRecord)] cannot expand this item",
                )
            }),
        ),
    }
}

fn record_impl(input: &Record<'_>) -> TokenStream {
    let ident = input.ident;
    let owned = record_body(input, false);
    let borrowed = record_body(input, true);
    quote! {
        #[doc(hidden)]
        #[allow(unused_qualifications, clippy::all)]
        const _: () = {
            impl ::auth_core::mapping::IntoUser for #ident {
                fn into_user(
                    self,
                ) -> ::auth_core::__private::std::result::Result<
                    ::auth_core::User,
                    ::auth_core::mapping::MappingError,
                > {
                    #owned
                }
            }

            /// Maps a borrowed record, copying only the mapped fields.
            impl ::auth_core::mapping::IntoUser for &#ident {
                fn into_user(
                    self,
                ) -> ::auth_core::__private::std::result::Result<
                    ::auth_core::User,
                    ::auth_core::mapping::MappingError,
                > {
                    #borrowed
                }
            }
        };
    }
}

/// The body of `into_user`, moving the fields out of `self` or (`borrowed`) cloning them.
fn record_body(input: &Record<'_>, borrowed: bool) -> TokenStream {
    let values_of = |f: &crate::ast::RecordField<'_>| {
        let name = f.ident;
        let ty = f.ty;
        if valid::string_like(ty) {
            let field = if borrowed {
                quote!(::auth_core::__private::std::clone::Clone::clone(&self.#name))
            } else {
                quote!(self.#name)
            };
            quote!(::auth_core::__private::IntoValues::into_values(#field))
        } else {
            quote_spanned! {syn::spanned::Spanned::span(ty)=>
                ::auth_core::__private::std::option::Option::Some(
                    ::auth_core::__private::std::vec![
                        ::auth_core::__private::std::string::ToString::to_string(&self.#name)
                    ]
                )
            }
        }
    };
    let mut version = quote!();
    let steps: Vec<TokenStream> = input
        .fields
        .iter()
        .filter_map(|f| {
            let (role, _) = f.attrs.role.as_ref()?;
            let source = ast::unraw(f.ident);
            let values = values_of(f);
            let required = ast::is_named(f.ty, "String");
            Some(match role {
                Role::Id => quote!(builder.id(#source, #values)?;),
                Role::Username => quote!(builder.username(#source, #values)?;),
                Role::Email => quote!(builder.email(#source, #values, #required)?;),
                Role::Name => quote!(builder.display_name(#source, #values, #required)?;),
                Role::Groups => {
                    let split = optional_str(f.attrs.split.as_ref());
                    let rdn = optional_str(f.attrs.group_name.as_ref());
                    quote!(builder.groups(#values, #split, #rdn);)
                }
                Role::CredentialVersion => {
                    version = quote! {
                        user.credential_version =
                            ::auth_core::__private::credential_version(#source, #values)?;
                    };
                    return None;
                }
                Role::Attr(attr) => quote!(builder.attribute(#attr, #values);),
            })
        })
        .collect();
    quote! {
        let mut builder = ::auth_core::mapping::UserBuilder::default();
        #(#steps)*
        #[allow(unused_mut)]
        let mut user = builder.build()?;
        #version
        ::auth_core::__private::std::result::Result::Ok(user)
    }
}

fn optional_str(lit: Option<&syn::LitStr>) -> TokenStream {
    match lit {
        Some(lit) => quote!(::auth_core::__private::std::option::Option::Some(#lit)),
        None => quote!(::auth_core::__private::std::option::Option::None),
    }
}
