// A permission listed twice is almost certainly a typo.
use axum::routing::get;
use session_core::has_all_permissions;

#[has_all_permissions("orders:read", "orders:read")]
async fn handler() -> &'static str {
    "ok"
}

fn main() {
    let _app: axum::Router = axum::Router::new().route("/x", get(handler));
}
