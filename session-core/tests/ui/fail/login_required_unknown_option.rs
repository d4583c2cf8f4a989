// `#[login_required]` takes no arguments besides `crate = ".."`.
use axum::routing::get;
use session_core::login_required;

#[login_required(foo = "bar")]
async fn handler() -> &'static str {
    "ok"
}

fn main() {
    let _app: axum::Router = axum::Router::new().route("/x", get(handler));
}
