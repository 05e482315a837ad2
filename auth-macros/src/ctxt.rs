//! Collects every error of one expansion, so the user sees all their mistakes at once.

use std::fmt::Display;

use quote::ToTokens;

/// The errors found so far, combined into one `syn::Error`.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// An error spanned on `tokens`.
    pub(crate) fn spanned(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// An error at `span`.
    pub(crate) fn at(&mut self, span: proc_macro2::Span, message: impl Display) {
        self.push(syn::Error::new(span, message));
    }

    pub(crate) fn into_error(self) -> Option<syn::Error> {
        self.0
    }
}

/// `` `a`, `b` or `c` ``, for "expected ..." messages.
pub(crate) fn one_of(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// " (did you mean `x`?)" when `got` is close to one of `names`.
pub(crate) fn did_you_mean(got: &str, names: &[&str]) -> String {
    names
        .iter()
        .map(|n| (strsim::damerau_levenshtein(n, got), *n))
        .filter(|(d, n)| *d <= 2.max(n.len() / 3) && *d < n.len().max(got.len()))
        .min()
        .map(|(_, n)| format!(" (did you mean `{n}`?)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_read_as_prose() {
        assert_eq!(one_of(&["type"]), "`type`");
        assert_eq!(one_of(&["type", "build"]), "`type` or `build`");
        assert_eq!(
            one_of(&["default", "rename", "skip"]),
            "`default`, `rename` or `skip`"
        );
    }

    #[test]
    fn suggestions_only_for_near_misses() {
        let keys = ["default", "rename", "skip"];
        assert_eq!(did_you_mean("defualt", &keys), " (did you mean `default`?)");
        assert_eq!(did_you_mean("renam", &keys), " (did you mean `rename`?)");
        assert_eq!(did_you_mean("optional", &keys), "");
        assert_eq!(
            did_you_mean("typ", &["type", "build"]),
            " (did you mean `type`?)"
        );
        assert_eq!(did_you_mean("x", &["type", "build"]), "");
    }
}
