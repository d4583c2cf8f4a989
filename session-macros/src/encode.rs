//! Type-level encoding of role/permission names, as understood by `session_core::__private`.
//!
//! - the string `"AB"` is `Ch<'A', Ch<'B', Nil>>` (one node per `char`);
//! - the list `["A", "B"]` is `LCons<S_A, LCons<S_B, LNil>>`.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{quote, quote_spanned};

/// The type encoding `value`; `krate` is the path to `session_core`.
pub(crate) fn string(krate: &TokenStream, value: &str, span: Span) -> TokenStream {
    value
        .chars()
        .rev()
        .fold(quote!(#krate::__private::Nil), |tail, c| {
            let mut c = Literal::character(c);
            c.set_span(span);
            quote_spanned!(span=> #krate::__private::Ch<#c, #tail>)
        })
}

/// The type encoding the list of (already encoded) `items`.
pub(crate) fn list<I>(krate: &TokenStream, items: I) -> TokenStream
where
    I: IntoIterator<Item = TokenStream>,
    I::IntoIter: DoubleEndedIterator,
{
    items.into_iter().rev().fold(
        quote!(#krate::__private::LNil),
        |tail, item| quote!(#krate::__private::LCons<#item, #tail>),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Token text without whitespace, so `>>` and `> >` compare equal.
    fn norm(tokens: impl ToString) -> String {
        tokens.to_string().split_whitespace().collect()
    }

    fn krate() -> TokenStream {
        quote!(::session_core)
    }

    fn encode(value: &str) -> String {
        norm(string(&krate(), value, Span::call_site()))
    }

    #[test]
    fn empty_string_is_nil() {
        assert_eq!(encode(""), "::session_core::__private::Nil");
    }

    #[test]
    fn one_node_per_char() {
        assert_eq!(
            encode("AB"),
            "::session_core::__private::Ch<'A',::session_core::__private::Ch<'B',::session_core::__private::Nil>>"
        );
    }

    #[test]
    fn escapes_and_non_ascii() {
        assert_eq!(
            encode("'\\é"),
            norm(
                quote!(::session_core::__private::Ch<'\'', ::session_core::__private::Ch<'\\', ::session_core::__private::Ch<'é', ::session_core::__private::Nil>>>)
            )
        );
    }

    #[test]
    fn list_keeps_order() {
        assert_eq!(
            norm(list(&krate(), [quote!(A), quote!(B)])),
            "::session_core::__private::LCons<A,::session_core::__private::LCons<B,::session_core::__private::LNil>>"
        );
        assert_eq!(norm(list(&krate(), [])), "::session_core::__private::LNil");
    }

    #[test]
    fn custom_crate_path() {
        let krate = quote!(my::sc);
        assert_eq!(
            norm(string(&krate, "x", Span::call_site())),
            "my::sc::__private::Ch<'x',my::sc::__private::Nil>"
        );
    }
}
