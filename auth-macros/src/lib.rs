//! Procedural macros for auth-core. Use them through `auth_core` (it re-exports them).
use proc_macro::TokenStream;

/// Placeholder until the macro lands.
#[proc_macro_attribute]
pub fn auth_backend(_args: TokenStream, input: TokenStream) -> TokenStream {
    input
}

/// Placeholder until the derive lands.
#[proc_macro_derive(UserRecord, attributes(user))]
pub fn derive_user_record(_input: TokenStream) -> TokenStream {
    TokenStream::new()
}
