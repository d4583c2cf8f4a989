// The `crate` option holds a path.
use axum::routing::get;
use session_core::has_role;

#[has_role("ADMIN", crate = "not a path")]
async fn handler() -> &'static str {
    "ok"
}

fn main() {
    let _app: axum::Router = axum::Router::new().route("/x", get(handler));
}
