//! Procedural macros for auth-core: `#[auth_backend(type = "...")]` and `#[derive(UserRecord)]`.
//! Use them through `auth_core` (it re-exports them); see this crate's README for the reference.
//!
//! This file is only the `proc_macro` boundary: `ast` builds a typed view of the input, `attr`
//! parses the attributes, `valid` checks rules across fields, `expand` generates the code and
//! `fallback` keeps the user's item compiling when there are errors.

mod ast;
mod attr;
mod ctxt;
mod expand;
mod fallback;
mod valid;

use proc_macro::TokenStream;

/// Turns a struct of options into a registered backend type. See the crate README.
#[proc_macro_attribute]
pub fn auth_backend(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::backend(args.into(), input.into()).into()
}

/// Implements `auth_core::IntoUser` for a record struct whose fields are marked `#[user(...)]`.
/// See the crate README.
#[proc_macro_derive(UserRecord, attributes(user))]
pub fn derive_user_record(input: TokenStream) -> TokenStream {
    expand::record(input.into()).into()
}
