//! Compile-time behaviour of the guard attributes (`#[login_required]`, `#[has_role(..)]`, ...):
//! what they accept (`ui/pass`) and how they reject misuse (`ui/fail`, with the expected
//! compiler output next to each case). After changing an error message, regenerate the
//! `.stderr` files with `TRYBUILD=overwrite cargo test -p session-core --test macros_ui` and
//! read the diff.
//!
//! One `TestCases` for all of them: trybuild builds its cases as one Cargo project of its own
//! (in `target/tests/trybuild`, with every dependency compiled again there), and each
//! `TestCases` is one more round of building that project's binaries; the axum and the
//! actix-web cases (`ui/actix`: the same attributes, the same messages) share the round.
#![cfg(all(feature = "macros", feature = "axum"))]

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
    #[cfg(feature = "actix")]
    {
        t.compile_fail("tests/ui/actix/fail/*.rs");
        t.pass("tests/ui/actix/pass/*.rs");
    }
}
