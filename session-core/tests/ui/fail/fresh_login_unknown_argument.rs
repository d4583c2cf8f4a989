// `#[fresh_login]` takes `max_age` (and `crate`) only: no names, no other options.
use axum::routing::put;
use session_core::fresh_login;

#[fresh_login("ADMIN", max_age = "5m")]
async fn name() -> &'static str {
    "ok"
}

#[fresh_login(max_age = "5m", within = "5m")]
async fn option() -> &'static str {
    "ok"
}

#[fresh_login(max_age = "5m", max_age = "1m")]
async fn twice() -> &'static str {
    "ok"
}

fn main() {
    let _app: axum::Router = axum::Router::new()
        .route("/a", put(name))
        .route("/b", put(option))
        .route("/c", put(twice));
}
