//! What is emitted when the input has errors: the user's item itself (so code using it still
//! type-checks), the `compile_error!`s, and stub impls of what the macro would have generated,
//! so one mistake does not cascade into "trait not implemented" errors elsewhere.

use proc_macro2::TokenStream;
use quote::quote;
use syn::DeriveInput;

/// The item without the `#[option(...)]` attributes, which only `#[auth_backend]` understands
/// (and without field `#[serde(...)]` when serde's derive is absent, already reported).
pub(crate) fn strip_option_attrs(input: &DeriveInput) -> DeriveInput {
    let mut item = input.clone();
    let keep_serde = crate::attr::derived_deserialize(&input.attrs).is_some();
    let strip = |attrs: &mut Vec<syn::Attribute>| {
        attrs
            .retain(|a| !a.path().is_ident("option") && (keep_serde || !a.path().is_ident("serde")))
    };
    match &mut item.data {
        syn::Data::Struct(s) => s.fields.iter_mut().for_each(|f| strip(&mut f.attrs)),
        syn::Data::Enum(e) => e.variants.iter_mut().for_each(|v| {
            strip(&mut v.attrs);
            v.fields.iter_mut().for_each(|f| strip(&mut f.attrs));
        }),
        syn::Data::Union(u) => u.fields.named.iter_mut().for_each(|f| strip(&mut f.attrs)),
    }
    item
}

/// `#[auth_backend]` with errors. `stubs` is false when the item has no usable shape.
pub(crate) fn backend(input: &DeriveInput, stubs: bool, error: syn::Error) -> TokenStream {
    let item = strip_option_attrs(input);
    let error = error.to_compile_error();
    if !stubs || crate::attr::derived_deserialize(&input.attrs).is_some() {
        return quote!(#item #error);
    }
    let ident = &input.ident;
    quote! {
        #item
        #error
        const _: () = {
            impl<'de> ::auth_core::__private::serde::Deserialize<'de> for #ident {
                fn deserialize<__D>(
                    _: __D,
                ) -> ::auth_core::__private::std::result::Result<Self, __D::Error>
                where
                    __D: ::auth_core::__private::serde::Deserializer<'de>,
                {
                    ::auth_core::__private::std::result::Result::Err(
                        <__D::Error as ::auth_core::__private::serde::de::Error>::custom(
                            "#[auth_backend] failed to expand",
                        ),
                    )
                }
            }
        };
    }
}

/// `#[derive(UserRecord)]` with errors.
pub(crate) fn record(input: &DeriveInput, error: syn::Error) -> TokenStream {
    let error = error.to_compile_error();
    if !matches!(input.data, syn::Data::Struct(_)) || !input.generics.params.is_empty() {
        return error;
    }
    let ident = &input.ident;
    let stub = quote! {
        fn into_user(
            self,
        ) -> ::auth_core::__private::std::result::Result<
            ::auth_core::User,
            ::auth_core::mapping::MappingError,
        > {
            ::auth_core::__private::std::result::Result::Err(
                ::auth_core::mapping::MappingError::Missing(
                    ::auth_core::__private::std::string::String::from(
                        "#[derive(UserRecord)] failed to expand",
                    ),
                ),
            )
        }
    };
    quote! {
        #error
        const _: () = {
            impl ::auth_core::mapping::IntoUser for #ident { #stub }
            impl ::auth_core::mapping::IntoUser for &#ident { #stub }
        };
    }
}
