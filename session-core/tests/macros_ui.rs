//! Compile-time behaviour of the guard attributes (`#[login_required]`, `#[has_role(..)]`, ...):
//! what they accept (`ui/pass`) and how they reject misuse (`ui/fail`, with the expected
//! compiler output next to each case). After changing an error message, regenerate the
//! `.stderr` files with `TRYBUILD=overwrite cargo test -p session-core --test macros_ui` and
//! read the diff.
#![cfg(all(feature = "macros", feature = "axum"))]

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}

/// The actix-web form: the same attributes, the same messages.
#[cfg(feature = "actix")]
#[test]
fn ui_actix() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/actix/fail/*.rs");
    t.pass("tests/ui/actix/pass/*.rs");
}
