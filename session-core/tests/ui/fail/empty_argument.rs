// A stray comma.
use axum::routing::get;
use session_core::has_any_role;

#[has_any_role("ADMIN", , "SUPPORT")]
async fn handler() -> &'static str {
    "ok"
}

fn main() {
    let _app: axum::Router = axum::Router::new().route("/x", get(handler));
}
