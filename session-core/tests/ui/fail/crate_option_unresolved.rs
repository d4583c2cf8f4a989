// A `crate` path that does not resolve: rustc reports it at the string.
use axum::routing::get;
use session_core::has_role;

#[has_role("ADMIN", crate = "no_such_crate")]
async fn handler() -> &'static str {
    "ok"
}

fn main() {
    let _app: axum::Router = axum::Router::new().route("/x", get(handler));
}
