// `#[has_all_permissions]` needs at least one permission.
use axum::routing::get;
use session_core::has_all_permissions;

#[has_all_permissions]
async fn handler() -> &'static str {
    "ok"
}

fn main() {
    let _app: axum::Router = axum::Router::new().route("/x", get(handler));
}
