//! The guard attributes' argument parser (`session-macros/src/args.rs`) on arbitrary token
//! streams, for every attribute: never a panic, only `syn` errors (which the macro turns into
//! `compile_error!`). The parser's sources are compiled in here, since a proc-macro crate can
//! export nothing but its macros.
#![no_main]
#![allow(dead_code)]

use std::str::FromStr;

use libfuzzer_sys::fuzz_target;
use proc_macro2::TokenStream;

#[path = "../../session-macros/src/args.rs"]
mod args;
#[path = "../../session-macros/src/kind.rs"]
mod kind;

use kind::Kind;

const KINDS: [Kind; 8] = [
    Kind::LoginRequired,
    Kind::FreshLogin,
    Kind::HasRole,
    Kind::HasAnyRole,
    Kind::HasAllRoles,
    Kind::HasPermission,
    Kind::HasAnyPermission,
    Kind::HasAllPermissions,
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Lexing is proc-macro2's job (rustc's, in a real build); only what lexes reaches the parser.
    let Ok(tokens) = TokenStream::from_str(text) else {
        return;
    };
    for kind in KINDS {
        match args::Args::parse(kind, tokens.clone()) {
            Ok(parsed) => {
                // What was accepted is well-formed: at most one name for the one-name forms.
                if matches!(kind, Kind::HasRole | Kind::HasPermission) {
                    assert_eq!(parsed.names.len(), 1);
                }
                if matches!(kind, Kind::LoginRequired | Kind::FreshLogin) {
                    assert!(parsed.names.is_empty());
                }
            }
            // The error renders as compile_error! tokens without panicking.
            Err(e) => drop(e.to_compile_error()),
        }
    }
});
