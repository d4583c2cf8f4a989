// Every mistake is reported at once, and the function is still emitted as written: `main`
// compiles, so nothing but the attribute's own errors is reported.
use axum::routing::get;
use session_core::has_any_role;

#[has_any_role("", ADMIN, "SUPPORT", "SUPPORT", foo = "bar")]
async fn handler() {}

fn main() {
    let _app: axum::Router = axum::Router::new().route("/x", get(handler));
}
