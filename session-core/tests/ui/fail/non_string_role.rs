// Roles are string literals: not identifiers, numbers or paths.
use axum::routing::get;
use session_core::{has_any_role, has_role};

#[has_role(ADMIN)]
async fn ident() {}

#[has_role(1)]
async fn number() {}

#[has_any_role("SUPPORT", some::path)]
async fn path() {}

fn main() {
    let _app: axum::Router = axum::Router::new()
        .route("/a", get(ident))
        .route("/b", get(number))
        .route("/c", get(path));
}
