// `#[fresh_login]`'s `method`: names a session can record, one or an array, none twice, once.
use axum::routing::put;
use session_core::fresh_login;

#[fresh_login(max_age = "5m", method = "pass key")]
async fn spaced() -> &'static str {
    "ok"
}

#[fresh_login(max_age = "5m", method = ["passkey", "passkey"])]
async fn twice() -> &'static str {
    "ok"
}

#[fresh_login(max_age = "5m", method = [])]
async fn empty() -> &'static str {
    "ok"
}

#[fresh_login(max_age = "5m", method = passkey)]
async fn bare() -> &'static str {
    "ok"
}

#[fresh_login(max_age = "5m", method = "passkey", method = "totp")]
async fn repeated() -> &'static str {
    "ok"
}

fn main() {
    let _app: axum::Router = axum::Router::new()
        .route("/a", put(spaced))
        .route("/b", put(twice))
        .route("/c", put(empty))
        .route("/d", put(bare))
        .route("/e", put(repeated));
}
