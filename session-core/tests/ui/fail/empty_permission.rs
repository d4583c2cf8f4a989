// An empty permission name can never match.
use axum::routing::get;
use session_core::has_any_permission;

#[has_any_permission("orders:read", "")]
async fn handler() -> &'static str {
    "ok"
}

fn main() {
    let _app: axum::Router = axum::Router::new().route("/x", get(handler));
}
