//! Parsing and checking the attribute arguments: the role/permission strings, the
//! `max_age = "5m"` and `method = ..` of `#[fresh_login]` and the `crate = "path"` option.

use std::collections::HashSet;

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{quote, ToTokens};
use syn::parse::{Parse, ParseStream};
use syn::{Error, Ident, Lit, LitStr, Path, Result, Token};

use crate::kind::{Arity, Kind};

/// Longest role or permission name, in characters. Each character becomes one level of type
/// nesting in the generated guard type, so this keeps the type well inside rustc's limits.
pub(crate) const MAX_NAME_CHARS: usize = 100;

/// One comma-separated argument, classified but not yet checked against the attribute.
pub(crate) enum Arg {
    /// A string literal: a role or permission name.
    Str(LitStr),
    /// `key = value`; `crate` is the only key there is.
    Option {
        key: Ident,
        eq: TokenTree,
        value: TokenStream,
    },
    /// Anything else (`ADMIN`, `1`, `some::path`, an empty argument); the error points here.
    Other(TokenStream),
}

impl Parse for Arg {
    /// Takes the tokens up to the next top-level comma, so that one bad argument gives one
    /// error at that argument rather than syn's "expected `,`" somewhere inside it.
    fn parse(input: ParseStream) -> Result<Self> {
        let mut tokens = Vec::new();
        while !input.is_empty() && !input.peek(Token![,]) {
            tokens.push(input.parse::<TokenTree>()?);
        }
        Ok(Arg::classify(tokens))
    }
}

impl Arg {
    fn classify(tokens: Vec<TokenTree>) -> Arg {
        let stream: TokenStream = tokens.iter().cloned().collect();
        // `syn::parse2` sees through the invisible groups of `macro_rules!` fragments.
        if let Ok(Lit::Str(lit)) = syn::parse2::<Lit>(stream.clone()) {
            if lit.suffix().is_empty() {
                return Arg::Str(lit);
            }
        }
        match tokens.as_slice() {
            [TokenTree::Ident(key), TokenTree::Punct(eq), value @ ..]
                if eq.as_char() == '=' && eq.spacing() == proc_macro2::Spacing::Alone =>
            {
                Arg::Option {
                    key: key.clone(),
                    eq: TokenTree::Punct(eq.clone()),
                    value: value.iter().cloned().collect(),
                }
            }
            _ => Arg::Other(stream),
        }
    }
}

/// The attribute's arguments as written: comma-separated, a trailing comma allowed.
pub(crate) struct RawArgs(pub(crate) Vec<Arg>);

impl Parse for RawArgs {
    fn parse(input: ParseStream) -> Result<Self> {
        let mut args = Vec::new();
        while !input.is_empty() {
            if input.peek(Token![,]) {
                // An empty argument (`(,` or `,,`): report it at the comma.
                let comma: Token![,] = input.parse()?;
                args.push(Arg::Other(comma.into_token_stream()));
                continue;
            }
            args.push(input.parse()?);
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(RawArgs(args))
    }
}

/// A checked role or permission name.
#[derive(Clone, Debug)]
pub(crate) struct Name {
    pub(crate) value: String,
    pub(crate) span: Span,
}

/// The checked arguments of one attribute.
pub(crate) struct Args {
    /// The role or permission names, in the order written (empty for `#[login_required]`).
    pub(crate) names: Vec<Name>,
    /// The path to `session_core`: `::session_core` unless `crate = ".."` says otherwise.
    pub(crate) krate: TokenStream,
    /// `#[fresh_login]`'s `max_age`, in seconds (`None` for the other attributes).
    pub(crate) max_age_secs: Option<u64>,
    /// `#[fresh_login]`'s `method`: the methods one of which the proof must be by (empty: any).
    pub(crate) methods: Vec<Name>,
}

/// Collects errors so that every bad argument is reported, not only the first.
#[derive(Default)]
pub(crate) struct Errors(Option<Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: Error) {
        match &mut self.0 {
            Some(first) => first.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn finish<T>(self, value: T) -> Result<T> {
        match self.0 {
            Some(error) => Err(error),
            None => Ok(value),
        }
    }
}

const CRATE_USAGE: &str = "`crate = \"path::to::session_core\"`";

impl Args {
    /// Parses and checks the arguments of `kind`.
    pub(crate) fn parse(kind: Kind, tokens: TokenStream) -> Result<Args> {
        let raw: RawArgs = syn::parse2(tokens)?;
        Args::check(kind, raw)
    }

    /// Checks already-split arguments against what `kind` accepts.
    pub(crate) fn check(kind: Kind, raw: RawArgs) -> Result<Args> {
        let name = kind.name();
        let mut errors = Errors::default();
        let mut names: Vec<Name> = Vec::new();
        let mut seen = HashSet::new();
        let mut krate: Option<(Ident, TokenStream)> = None;
        let mut max_age: Option<u64> = None;
        let mut attempted_max_age = false;
        let mut methods: Option<Vec<Name>> = None;
        // Whether anything was written where a name belongs, good or bad; if so, a missing
        // name is not reported on top of the error for what was written.
        let mut attempted_name = false;

        for arg in raw.0 {
            match arg {
                Arg::Option { key, eq, value } if key == "crate" => {
                    if krate.is_some() {
                        errors.push(Error::new(key.span(), "duplicate option `crate`"));
                        continue;
                    }
                    match crate_path(&eq, value) {
                        Ok(path) => krate = Some((key, path)),
                        Err(e) => errors.push(e),
                    }
                }
                Arg::Option { key, eq, value } if key == "max_age" && kind == Kind::FreshLogin => {
                    if attempted_max_age {
                        errors.push(Error::new(key.span(), "duplicate option `max_age`"));
                        continue;
                    }
                    attempted_max_age = true;
                    match max_age_secs(&eq, value) {
                        Ok(secs) => max_age = Some(secs),
                        Err(e) => errors.push(e),
                    }
                }
                Arg::Option { key, eq, value } if key == "method" && kind == Kind::FreshLogin => {
                    if methods.is_some() {
                        errors.push(Error::new(key.span(), "duplicate option `method`"));
                        continue;
                    }
                    match method_names(&eq, value) {
                        Ok(names) => methods = Some(names),
                        Err(e) => {
                            methods = Some(Vec::new());
                            errors.push(e);
                        }
                    }
                }
                Arg::Option { key, .. } if kind == Kind::FreshLogin => {
                    errors.push(Error::new(
                        key.span(),
                        format!(
                            "unknown option `{key}`; `#[fresh_login]` takes {MAX_AGE_USAGE}, \
                             optionally {METHOD_USAGE}, and optionally {CRATE_USAGE}"
                        ),
                    ));
                }
                Arg::Option { key, .. } => {
                    let message = match kind.arity() {
                        Arity::None => format!(
                            "`#[{name}]` takes no arguments; the only option is {CRATE_USAGE}"
                        ),
                        _ => format!("unknown option `{key}`; the only option is {CRATE_USAGE}"),
                    };
                    errors.push(Error::new(key.span(), message));
                }
                Arg::Str(lit) => {
                    let Some(noun) = kind.noun() else {
                        errors.push(Error::new_spanned(lit, no_arguments(kind)));
                        continue;
                    };
                    attempted_name = true;
                    let what = noun.singular();
                    if kind.arity() == Arity::One && !names.is_empty() {
                        errors.push(Error::new_spanned(
                            lit,
                            format!("`#[{name}]` takes one {what}; use {}", kind.plural_forms()),
                        ));
                        continue;
                    }
                    let value = lit.value();
                    let problem = if value.is_empty() {
                        Some(format!("{what} names cannot be empty"))
                    } else if let Some(c) = value.chars().find(|c| c.is_control()) {
                        Some(format!(
                            "{what} names cannot contain control characters (found U+{:04X})",
                            u32::from(c)
                        ))
                    } else if value.chars().count() > MAX_NAME_CHARS {
                        Some(format!(
                            "{what} names are limited to {MAX_NAME_CHARS} characters (this one has {}): \
                             each character is one level of type nesting in the guard",
                            value.chars().count()
                        ))
                    } else if !seen.insert(value.clone()) {
                        Some(format!("duplicate {what} {value:?}"))
                    } else {
                        None
                    };
                    match problem {
                        Some(message) => errors.push(Error::new_spanned(&lit, message)),
                        None => names.push(Name {
                            value,
                            span: lit.span(),
                        }),
                    }
                }
                Arg::Other(tokens) => {
                    let message = match kind.noun() {
                        None => no_arguments(kind),
                        Some(noun) => {
                            attempted_name = true;
                            format!("expected a string literal such as {}", noun.example())
                        }
                    };
                    errors.push(Error::new_spanned(tokens, message));
                }
            }
        }

        if let Some(noun) = kind.noun() {
            if !attempted_name {
                let need = match kind.arity() {
                    Arity::One => format!("a {}", noun.singular()),
                    _ => format!("at least one {}", noun.singular()),
                };
                errors.push(Error::new(
                    Span::call_site(),
                    format!("`#[{name}]` needs {need}: `{}`", kind.usage()),
                ));
            }
        }

        if kind == Kind::FreshLogin && !attempted_max_age {
            errors.push(Error::new(
                Span::call_site(),
                format!("`#[fresh_login]` needs {MAX_AGE_USAGE}"),
            ));
        }

        let krate = match krate {
            Some((_, path)) => path,
            None => quote!(::session_core),
        };
        errors.finish(Args {
            names,
            krate,
            max_age_secs: max_age,
            methods: methods.unwrap_or_default(),
        })
    }
}

const MAX_AGE_USAGE: &str = "`max_age = \"5m\"`";
const METHOD_USAGE: &str = "`method = \"passkey\"` or `method = [\"passkey\", \"totp\"]`";

/// The value of `method = ..`: one method name or an array of them, each 1 to 32 bytes of
/// `[A-Za-z0-9._-]` (what a session can record), none twice.
fn method_names(eq: &TokenTree, value: TokenStream) -> Result<Vec<Name>> {
    let literals: Vec<LitStr> = match syn::parse2::<syn::Expr>(value.clone()) {
        Ok(syn::Expr::Lit(syn::ExprLit {
            lit: Lit::Str(lit), ..
        })) => vec![lit],
        Ok(syn::Expr::Array(array)) if !array.elems.is_empty() => array
            .elems
            .iter()
            .map(|e| match e {
                syn::Expr::Lit(syn::ExprLit {
                    lit: Lit::Str(lit), ..
                }) => Ok(lit.clone()),
                other => Err(Error::new_spanned(
                    other,
                    format!("`method` takes string literals: {METHOD_USAGE}"),
                )),
            })
            .collect::<Result<_>>()?,
        _ if value.is_empty() => {
            return Err(Error::new_spanned(
                eq,
                format!("expected a method after `method =`: {METHOD_USAGE}"),
            ))
        }
        _ => {
            return Err(Error::new_spanned(
                value,
                format!("`method` takes {METHOD_USAGE}"),
            ))
        }
    };
    let mut seen = HashSet::new();
    let mut names = Vec::new();
    for lit in literals {
        let value = lit.value();
        let usable = !value.is_empty()
            && value.len() <= 32
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if !usable {
            return Err(Error::new_spanned(
                &lit,
                format!(
                    "method names are 1 to 32 bytes of [A-Za-z0-9._-] (as a session records \
                     them), not {value:?}"
                ),
            ));
        }
        if !seen.insert(value.clone()) {
            return Err(Error::new_spanned(
                &lit,
                format!("duplicate method {value:?}"),
            ));
        }
        names.push(Name {
            value,
            span: lit.span(),
        });
    }
    Ok(names)
}
/// What a `max_age` value looks like.
const DURATION_FORM: &str =
    "whole numbers of h, m and s, largest first, such as \"90s\", \"5m\" or \"1h30m\"";

/// What to say about a stray argument of an attribute that takes no names.
fn no_arguments(kind: Kind) -> String {
    match kind {
        Kind::FreshLogin => {
            format!("`#[fresh_login]` takes only {MAX_AGE_USAGE} (and optionally {CRATE_USAGE})")
        }
        _ => format!("`#[{}]` takes no arguments", kind.name()),
    }
}

/// The value of `max_age = ..`: a string literal such as `"5m"`, `"90s"` or `"1h30m"`, more
/// than zero seconds.
fn max_age_secs(eq: &TokenTree, value: TokenStream) -> Result<u64> {
    if value.is_empty() {
        return Err(Error::new_spanned(
            eq,
            format!("expected a string literal after `max_age =`: {MAX_AGE_USAGE}"),
        ));
    }
    let lit = match syn::parse2::<Lit>(value.clone()) {
        Ok(Lit::Str(lit)) => lit,
        _ => {
            return Err(Error::new_spanned(
                value,
                format!("`max_age` takes a string literal of {DURATION_FORM}"),
            ))
        }
    };
    match parse_duration_secs(&lit.value()) {
        Some(secs) if secs > 0 => Ok(secs),
        Some(_) => Err(Error::new_spanned(&lit, "`max_age` must be more than zero")),
        None => Err(Error::new_spanned(
            &lit,
            format!("`max_age` must be {DURATION_FORM}, not {:?}", lit.value()),
        )),
    }
}

/// `"1h30m"` → 5400: whole numbers each followed by `h`, `m` or `s`, largest unit first.
fn parse_duration_secs(text: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut number: Option<u64> = None;
    let mut last_unit = u64::MAX;
    for c in text.chars() {
        if let Some(d) = c.to_digit(10) {
            number = Some(
                number
                    .unwrap_or(0)
                    .checked_mul(10)?
                    .checked_add(u64::from(d))?,
            );
            continue;
        }
        let unit = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
        if unit >= last_unit {
            return None;
        }
        last_unit = unit;
        total = total.checked_add(number.take()?.checked_mul(unit)?)?;
    }
    if number.is_some() || last_unit == u64::MAX {
        return None;
    }
    Some(total)
}

/// The value of `crate = ..`: a string literal holding a path such as `"my_app::session_core"`.
fn crate_path(eq: &TokenTree, value: TokenStream) -> Result<TokenStream> {
    if value.is_empty() {
        return Err(Error::new_spanned(
            eq,
            format!("expected a string literal after `crate =`: {CRATE_USAGE}"),
        ));
    }
    let lit = match syn::parse2::<Lit>(value.clone()) {
        Ok(Lit::Str(lit)) => lit,
        _ => {
            return Err(Error::new_spanned(
                value,
                format!("`crate` takes a string literal holding a path: {CRATE_USAGE}"),
            ))
        }
    };
    match lit.parse_with(Path::parse_mod_style) {
        Ok(path) => Ok(path.into_token_stream()),
        Err(_) => Err(Error::new_spanned(
            &lit,
            format!(
                "`crate` must be a path such as \"session_core\" or \"my_app::deps::session_core\", \
                 not {:?}",
                lit.value()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(kind: Kind, tokens: TokenStream) -> std::result::Result<Vec<String>, String> {
        Args::parse(kind, tokens)
            .map(|a| a.names.into_iter().map(|n| n.value).collect())
            .map_err(|e| {
                e.into_iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join(" | ")
            })
    }

    #[test]
    fn accepts_strings_and_crate_option() {
        assert_eq!(parse(Kind::HasRole, quote!("ADMIN")).unwrap(), ["ADMIN"]);
        assert_eq!(
            parse(Kind::HasAnyRole, quote!("A", "B",)).unwrap(),
            ["A", "B"]
        );
        assert_eq!(
            parse(Kind::LoginRequired, quote!()).unwrap(),
            Vec::<String>::new()
        );
        let args = Args::parse(Kind::HasRole, quote!("A", crate = "my::sc")).unwrap();
        assert_eq!(args.krate.to_string(), "my :: sc");
        let args = Args::parse(Kind::LoginRequired, quote!(crate = "::sc")).unwrap();
        assert_eq!(args.krate.to_string(), ":: sc");
        assert_eq!(
            Args::parse(Kind::HasRole, quote!("A"))
                .unwrap()
                .krate
                .to_string(),
            ":: session_core"
        );
    }

    #[test]
    fn rejects_bad_arguments() {
        let cases: &[(Kind, TokenStream, &str)] = &[
            (
                Kind::HasRole,
                quote!(),
                "`#[has_role]` needs a role: `#[has_role(\"ADMIN\")]`",
            ),
            (
                Kind::HasAllPermissions,
                quote!(),
                "`#[has_all_permissions]` needs at least one permission",
            ),
            (Kind::HasRole, quote!(""), "role names cannot be empty"),
            (
                Kind::HasPermission,
                quote!(""),
                "permission names cannot be empty",
            ),
            (
                Kind::HasRole,
                quote!(ADMIN),
                "expected a string literal such as \"ADMIN\"",
            ),
            (
                Kind::HasRole,
                quote!(1),
                "expected a string literal such as \"ADMIN\"",
            ),
            (
                Kind::HasRole,
                quote!(a::b),
                "expected a string literal such as \"ADMIN\"",
            ),
            (Kind::HasRole, quote!(b"A"), "expected a string literal"),
            (
                Kind::HasAnyRole,
                quote!("A",, "B"),
                "expected a string literal",
            ),
            (
                Kind::HasRole,
                quote!("A", "B"),
                "`#[has_role]` takes one role; use `#[has_any_role(..)]`",
            ),
            (
                Kind::HasPermission,
                quote!("a", "b"),
                "takes one permission; use `#[has_any_permission(..)]`",
            ),
            (
                Kind::LoginRequired,
                quote!("x"),
                "`#[login_required]` takes no arguments",
            ),
            (
                Kind::LoginRequired,
                quote!(x),
                "`#[login_required]` takes no arguments",
            ),
            (
                Kind::LoginRequired,
                quote!(foo = "x"),
                "`#[login_required]` takes no arguments; the only option",
            ),
            (
                Kind::HasRole,
                quote!("A", foo = "bar"),
                "unknown option `foo`; the only option is `crate = \"path::to::session_core\"`",
            ),
            (
                Kind::HasRole,
                quote!("A", crate = sc),
                "`crate` takes a string literal holding a path",
            ),
            (
                Kind::HasRole,
                quote!("A", crate =),
                "expected a string literal after `crate =`",
            ),
            (
                Kind::HasRole,
                quote!("A", crate = "not a path"),
                "`crate` must be a path",
            ),
            (
                Kind::HasRole,
                quote!("A", crate = "a<b>"),
                "`crate` must be a path",
            ),
            (
                Kind::HasRole,
                quote!("A", crate = "a", crate = "b"),
                "duplicate option `crate`",
            ),
            (
                Kind::HasAnyRole,
                quote!("A", "B", "A"),
                "duplicate role \"A\"",
            ),
            (
                Kind::HasAnyRole,
                quote!("A\n"),
                "role names cannot contain control characters (found U+000A)",
            ),
        ];
        for (kind, tokens, expected) in cases {
            let err = parse(*kind, tokens.clone()).expect_err(&tokens.to_string());
            assert!(err.contains(expected), "{kind:?}({tokens}): {err}");
            // A bad name is not also reported as a missing one.
            if !tokens.is_empty() {
                assert!(!err.contains("needs"), "{kind:?}({tokens}): {err}");
            }
        }
    }

    #[test]
    fn name_length_limit() {
        let ok = "A".repeat(MAX_NAME_CHARS);
        assert!(parse(Kind::HasRole, quote!(#ok)).is_ok());
        let long = "é".repeat(MAX_NAME_CHARS + 1);
        let err = parse(Kind::HasRole, quote!(#long)).unwrap_err();
        assert!(
            err.contains("limited to 100 characters (this one has 101)"),
            "{err}"
        );
    }

    #[test]
    fn fresh_login_max_age() {
        let secs = |t: TokenStream| Args::parse(Kind::FreshLogin, t).map(|a| a.max_age_secs);
        assert_eq!(secs(quote!(max_age = "5m")).ok(), Some(Some(300)));
        assert_eq!(
            secs(quote!(max_age = "1h30m", crate = "sc")).ok(),
            Some(Some(5400))
        );
        assert_eq!(secs(quote!(max_age = "90s")).ok(), Some(Some(90)));
        for (tokens, expected) in [
            (quote!(), "`#[fresh_login]` needs `max_age"),
            (quote!(max_age = "0s"), "must be more than zero"),
            (quote!(max_age = "5"), "`max_age` must be"),
            (quote!(max_age = "5x"), "`max_age` must be"),
            (quote!(max_age = "1m1h"), "`max_age` must be"),
            (
                quote!(max_age = 5),
                "`max_age` takes a string literal of whole numbers",
            ),
            (
                quote!(max_age =),
                "expected a string literal after `max_age =`",
            ),
            (
                quote!(max_age = "1m", max_age = "2m"),
                "duplicate option `max_age`",
            ),
            (quote!(max_age = "1m", foo = "x"), "unknown option `foo`"),
            (quote!("5m"), "`#[fresh_login]` takes only `max_age"),
        ] {
            let err = parse(Kind::FreshLogin, tokens.clone()).expect_err(&tokens.to_string());
            assert!(err.contains(expected), "{tokens}: {err}");
        }
        assert_eq!(parse_duration_secs("99999999999999999999h"), None);
    }

    #[test]
    fn reports_every_bad_argument() {
        let err = Args::parse(Kind::HasAnyRole, quote!("", X, foo = "y"))
            .err()
            .map(|e| e.into_iter().count());
        assert_eq!(err, Some(3));
    }
}
