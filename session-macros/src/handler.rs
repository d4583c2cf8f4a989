//! Checking that the attribute sits on something it can guard: a free-standing `async fn`.

use proc_macro2::TokenStream;
use syn::{Error, FnArg, Item, ItemFn, Result, Signature, TraitItemFn};

use crate::args::Errors;
use crate::kind::Kind;

/// Parses `item` as the `async fn` handler that `kind` guards.
pub(crate) fn parse(kind: Kind, item: TokenStream) -> Result<ItemFn> {
    let name = kind.name();
    match syn::parse2::<ItemFn>(item.clone()) {
        Ok(func) => {
            check_signature(kind, &func.sig)?;
            Ok(func)
        }
        Err(not_a_fn) => {
            if let Ok(func) = syn::parse2::<TraitItemFn>(item.clone()) {
                // A trait method declaration without a body.
                check_signature(kind, &func.sig)?;
                return Err(Error::new(
                    func.sig.fn_token.span,
                    format!("`#[{name}]` guards handler functions with a body"),
                ));
            }
            let message = format!(
                "`#[{name}]` can only be applied to an `async fn` handler (axum or actix-web)"
            );
            match syn::parse2::<Item>(item) {
                Ok(item) => Err(Error::new_spanned(item_keyword(&item), message)),
                // Not an item at all: rustc reports the syntax error on the re-emitted tokens;
                // ours points at where syn gave up.
                Err(_) => Err(Error::new(not_a_fn.span(), message)),
            }
        }
    }
}

/// Rejects methods and non-`async` functions, reporting both when both apply.
fn check_signature(kind: Kind, sig: &Signature) -> Result<()> {
    let name = kind.name();
    let mut errors = Errors::default();
    if let Some(FnArg::Receiver(receiver)) = sig.inputs.first() {
        errors.push(Error::new(
            receiver.self_token.span,
            format!(
                "`#[{name}]` guards free-standing handler functions, not methods that take `self`"
            ),
        ));
    }
    if sig.asyncness.is_none() {
        errors.push(Error::new(
            sig.fn_token.span,
            format!("`#[{name}]` guards async handlers (axum or actix-web); add `async`"),
        ));
    }
    errors.finish(())
}

/// The token that says what kind of item `item` is (`struct`, `impl`, ...), so the error
/// points there rather than at the whole item.
fn item_keyword(item: &Item) -> TokenStream {
    use quote::ToTokens;
    match item {
        Item::Const(i) => i.const_token.into_token_stream(),
        Item::Enum(i) => i.enum_token.into_token_stream(),
        Item::ExternCrate(i) => i.extern_token.into_token_stream(),
        Item::ForeignMod(i) => i.abi.extern_token.into_token_stream(),
        Item::Impl(i) => i.impl_token.into_token_stream(),
        Item::Macro(i) => i.mac.path.to_token_stream(),
        Item::Mod(i) => i.mod_token.into_token_stream(),
        Item::Static(i) => i.static_token.into_token_stream(),
        Item::Struct(i) => i.struct_token.into_token_stream(),
        Item::Trait(i) => i.trait_token.into_token_stream(),
        Item::TraitAlias(i) => i.trait_token.into_token_stream(),
        Item::Type(i) => i.type_token.into_token_stream(),
        Item::Union(i) => i.union_token.into_token_stream(),
        Item::Use(i) => i.use_token.into_token_stream(),
        other => other.to_token_stream(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn err(item: TokenStream) -> String {
        match parse(Kind::HasRole, item) {
            Ok(_) => String::from("ok"),
            Err(e) => e
                .into_iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(" | "),
        }
    }

    #[test]
    fn accepts_async_fns() {
        assert_eq!(
            err(quote!(
                async fn f() {}
            )),
            "ok"
        );
        assert_eq!(
            err(quote!(
                pub(crate) async fn f<T: Send>(x: T) -> u8
                where
                    T: Sync,
                {
                    1
                }
            )),
            "ok"
        );
    }

    #[test]
    fn rejects_non_handlers() {
        assert_eq!(
            err(quote!(
                fn f() {}
            )),
            "`#[has_role]` guards async handlers (axum or actix-web); add `async`"
        );
        assert!(err(quote!(
            async fn f(&self) {}
        ))
        .contains("guards free-standing handler functions"));
        let both = err(quote!(
            fn f(self) {}
        ));
        assert!(
            both.contains("free-standing") && both.contains("add `async`"),
            "{both}"
        );
        assert!(err(quote!(
            async fn f(&self);
        ))
        .contains("free-standing"));
        assert!(err(quote!(
            async fn f();
        ))
        .contains("with a body"));
        assert_eq!(
            err(quote!(
                struct S;
            )),
            "`#[has_role]` can only be applied to an `async fn` handler (axum or actix-web)"
        );
        assert!(err(quote!(1 + 1)).contains("can only be applied"));
    }
}
