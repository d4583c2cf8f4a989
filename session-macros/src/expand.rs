//! Code generation: the function as written, with the guard inserted as its first argument.

use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens};
use syn::{FnArg, ItemFn, Pat, PatType, PatWild, Type};

use crate::args::{Args, Errors};
use crate::kind::Kind;
use crate::{encode, handler};

/// Expands `#[kind(args)] item`. On any error the item is emitted unchanged, followed by the
/// errors, so that the rest of the crate (and the IDE) still sees the function.
pub(crate) fn expand(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let args = Args::parse(kind, args);
    let func = handler::parse(kind, item.clone());
    match (args, func) {
        (Ok(args), Ok(func)) => guard(kind, &args, func).into_token_stream(),
        (args, func) => {
            let mut errors = Errors::default();
            if let Err(e) = args {
                errors.push(e);
            }
            if let Err(e) = func {
                errors.push(e);
            }
            let errors = match errors.finish(()) {
                Err(e) => e.into_compile_error(),
                Ok(()) => TokenStream::new(),
            };
            quote!(#item #errors)
        }
    }
}

/// The type of the injected argument, e.g. `Guard<AnyRole<LCons<Ch<'A', Nil>, LNil>>>`.
pub(crate) fn guard_type(kind: Kind, args: &Args) -> TokenStream {
    let krate = &args.krate;
    let policy = syn::Ident::new(kind.policy(), Span::call_site());
    let policy = match kind.noun() {
        None => match args.max_age_secs {
            Some(secs) if args.methods.is_empty() => {
                let secs = proc_macro2::Literal::u64_unsuffixed(secs);
                quote!(#krate::__private::#policy<#secs>)
            }
            Some(secs) => {
                let secs = proc_macro2::Literal::u64_unsuffixed(secs);
                let methods = args
                    .methods
                    .iter()
                    .map(|m| encode::string(krate, &m.value, m.span));
                let list = encode::list(krate, methods.collect::<Vec<_>>());
                quote!(#krate::__private::#policy<#secs, #list>)
            }
            None => quote!(#krate::__private::#policy),
        },
        Some(_) => {
            let names = args
                .names
                .iter()
                .map(|name| encode::string(krate, &name.value, name.span));
            let list = encode::list(krate, names.collect::<Vec<_>>());
            quote!(#krate::__private::#policy<#list>)
        }
    };
    quote!(#krate::__private::Guard<#policy>)
}

/// `func` with `_: <guard type>` inserted first in its parameter list; nothing else changes.
fn guard(kind: Kind, args: &Args, mut func: ItemFn) -> ItemFn {
    let span = Span::call_site();
    let arg = FnArg::Typed(PatType {
        attrs: Vec::new(),
        pat: Box::new(Pat::Wild(PatWild {
            attrs: Vec::new(),
            underscore_token: syn::Token![_](span),
        })),
        colon_token: syn::Token![:](span),
        ty: Box::new(Type::Verbatim(guard_type(kind, args))),
    });
    func.sig.inputs.insert(0, arg);
    func
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Token text without whitespace, so `>>` and `> >` compare equal.
    fn norm(tokens: impl ToString) -> String {
        tokens.to_string().split_whitespace().collect()
    }

    #[test]
    fn has_any_role_expansion() {
        let out = expand(
            Kind::HasAnyRole,
            quote!("ADMIN", "SUPPORT"),
            quote!(
                async fn f(Path(id): Path<u32>) -> String {
                    id.to_string()
                }
            ),
        );
        println!("{out}");
        let s = |c: char, tail: TokenStream| quote!(::session_core::__private::Ch<#c, #tail>);
        let word = |w: &str| {
            w.chars()
                .rev()
                .fold(quote!(::session_core::__private::Nil), |tail, c| s(c, tail))
        };
        let (admin, support) = (word("ADMIN"), word("SUPPORT"));
        let expected = quote! {
            async fn f(
                _: ::session_core::__private::Guard<::session_core::__private::AnyRole<
                    ::session_core::__private::LCons<#admin,
                        ::session_core::__private::LCons<#support, ::session_core::__private::LNil>>
                >>,
                Path(id): Path<u32>
            ) -> String { id.to_string() }
        };
        assert_eq!(norm(&out), norm(expected));
    }

    #[test]
    fn login_required_keeps_everything_else() {
        let out = expand(
            Kind::LoginRequired,
            quote!(crate = "sc"),
            quote! {
                /// Docs.
                #[allow(unused)]
                pub(crate) async fn f<T>(a: T, b: u8,) -> T where T: Send { a }
            },
        );
        let expected = quote! {
            #[doc = r" Docs."]
            #[allow(unused)]
            pub(crate) async fn f<T>(_: sc::__private::Guard<sc::__private::Login>, a: T, b: u8,) -> T where T: Send { a }
        };
        assert_eq!(norm(&out), norm(expected));
    }

    #[test]
    fn every_kind_uses_its_policy() {
        for (kind, policy) in [
            (Kind::HasRole, "AnyRole"),
            (Kind::HasAllRoles, "AllRoles"),
            (Kind::HasPermission, "AnyPermission"),
            (Kind::HasAnyPermission, "AnyPermission"),
            (Kind::HasAllPermissions, "AllPermissions"),
        ] {
            let args = Args::parse(kind, quote!("x")).map_err(|e| e.to_string());
            let ty = guard_type(kind, &args.unwrap()).to_string();
            assert!(ty.starts_with(&format!(":: session_core :: __private :: Guard < :: session_core :: __private :: {policy} <")), "{ty}");
        }
    }

    #[test]
    fn errors_keep_the_original_item() {
        let item = quote!(
            fn f() {}
        );
        let out = expand(Kind::HasRole, quote!(""), item.clone()).to_string();
        assert!(out.starts_with(&item.to_string()), "{out}");
        assert!(out.contains("role names cannot be empty"), "{out}");
        assert!(out.contains("add `async`"), "{out}");
    }
}
