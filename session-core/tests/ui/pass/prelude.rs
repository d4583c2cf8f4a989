// The macros come with the prelude, and can be named by path.
use axum::routing::get;
use session_core::prelude::*;

#[has_role("ADMIN")]
async fn by_prelude() {}

#[session_core::has_any_permission("orders:read", "orders:admin")]
async fn by_path() {}

fn main() {
    let _app: axum::Router = axum::Router::new()
        .route("/a", get(by_prelude))
        .route("/b", get(by_path));
}
