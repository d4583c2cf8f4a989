// `#[fresh_login(max_age = ..)]`: alone, stacked with a role guard, with the `crate` option, in
// every duration form, and with a method or one of several; each handler still routes.
use axum::routing::{delete, put};
use session_core::{fresh_login, has_role};

#[fresh_login(max_age = "5m")]
async fn change_password(body: String) -> String {
    body
}

#[fresh_login(max_age = "1h30m", crate = "session_core")]
#[has_role("ADMIN")]
async fn delete_everything() -> &'static str {
    "gone"
}

#[fresh_login(max_age = "90s")]
#[axum::debug_handler]
async fn checked() -> &'static str {
    "ok"
}

#[fresh_login(max_age = "5m", method = "passkey")]
async fn vault() -> &'static str {
    "open"
}

#[fresh_login(method = ["passkey", "totp"], max_age = "10m")]
async fn payout() -> &'static str {
    "paid"
}

fn main() {
    let _app: axum::Router = axum::Router::new()
        .route("/password", put(change_password))
        .route("/everything", delete(delete_everything))
        .route("/checked", put(checked))
        .route("/vault", put(vault))
        .route("/payout", put(payout));
}
