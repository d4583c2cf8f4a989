// `#[device_bound]` takes no arguments: a session is bound or it is not.
use axum::routing::get;
use session_core::device_bound;

#[device_bound(max_age = "5m")]
async fn handler() -> &'static str {
    "ok"
}

fn main() {
    let _app: axum::Router = axum::Router::new().route("/x", get(handler));
}
