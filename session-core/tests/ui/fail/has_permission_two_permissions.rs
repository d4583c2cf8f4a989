// `#[has_permission]` takes one permission; the list forms take several.
use axum::routing::get;
use session_core::has_permission;

#[has_permission("orders:read", "orders:write")]
async fn handler() -> &'static str {
    "ok"
}

fn main() {
    let _app: axum::Router = axum::Router::new().route("/x", get(handler));
}
