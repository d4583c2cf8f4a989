// `#[has_any_role()]` needs at least one role.
use axum::routing::get;
use session_core::has_any_role;

#[has_any_role()]
async fn handler() -> &'static str {
    "ok"
}

fn main() {
    let _app: axum::Router = axum::Router::new().route("/x", get(handler));
}
