// `#[has_role]` takes one role; the list forms take several.
use axum::routing::get;
use session_core::has_role;

#[has_role("ADMIN", "SUPPORT")]
async fn handler() -> &'static str {
    "ok"
}

fn main() {
    let _app: axum::Router = axum::Router::new().route("/x", get(handler));
}
