// `#[fresh_login]` needs `max_age`.
use axum::routing::put;
use session_core::fresh_login;

#[fresh_login]
async fn handler() -> &'static str {
    "ok"
}

fn main() {
    let _app: axum::Router = axum::Router::new().route("/x", put(handler));
}
