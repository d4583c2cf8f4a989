// `crate = ".."` for a renamed or re-exported session_core.
extern crate session_core as sc;

use axum::routing::get;
use sc::{has_any_role, has_role, login_required};

mod deps {
    pub use ::session_core as auth;
}

#[login_required(crate = "sc")]
async fn renamed() {}

#[has_role("ADMIN", crate = "crate::deps::auth")]
async fn re_exported() {}

#[has_any_role("ADMIN", "SUPPORT", crate = "::session_core")]
async fn absolute() {}

fn main() {
    let _app: axum::Router = axum::Router::new()
        .route("/a", get(renamed))
        .route("/b", get(re_exported))
        .route("/c", get(absolute));
}
