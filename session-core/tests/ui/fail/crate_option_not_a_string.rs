// The `crate` option is a string literal, like `#[tokio::main(crate = "..")]`.
use axum::routing::get;
use session_core::has_role;

#[has_role("ADMIN", crate = session_core)]
async fn handler() -> &'static str {
    "ok"
}

fn main() {
    let _app: axum::Router = axum::Router::new().route("/x", get(handler));
}
