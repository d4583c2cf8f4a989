// Control characters in a role name are rejected.
use axum::routing::get;
use session_core::has_role;

#[has_role("ADMIN\n")]
async fn handler() -> &'static str {
    "ok"
}

fn main() {
    let _app: axum::Router = axum::Router::new().route("/x", get(handler));
}
