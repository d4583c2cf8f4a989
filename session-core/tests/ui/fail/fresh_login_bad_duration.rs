// `max_age` is whole numbers of h, m and s, largest first, more than zero.
use axum::routing::put;
use session_core::fresh_login;

#[fresh_login(max_age = "5 minutes")]
async fn words() -> &'static str {
    "ok"
}

#[fresh_login(max_age = "0s")]
async fn zero() -> &'static str {
    "ok"
}

#[fresh_login(max_age = 300)]
async fn number() -> &'static str {
    "ok"
}

fn main() {
    let _app: axum::Router = axum::Router::new()
        .route("/a", put(words))
        .route("/b", put(zero))
        .route("/c", put(number));
}
