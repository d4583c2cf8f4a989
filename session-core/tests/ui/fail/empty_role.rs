// An empty role name can never match.
use axum::routing::get;
use session_core::has_role;

#[has_role("")]
async fn handler() -> &'static str {
    "ok"
}

fn main() {
    let _app: axum::Router = axum::Router::new().route("/x", get(handler));
}
