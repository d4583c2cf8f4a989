// `#[axum::debug_handler]` goes below the guard attribute: the guard's argument is then in
// place when debug_handler checks the handler.
use axum::routing::get;
use session_core::web::CurrentUser;
use session_core::{has_role, login_required};

#[login_required]
#[axum::debug_handler]
async fn me(user: CurrentUser) -> String {
    user.user_id().to_owned()
}

#[has_role("ADMIN")]
#[axum::debug_handler]
async fn admin() -> &'static str {
    "admin"
}

fn main() {
    let _app: axum::Router = axum::Router::new()
        .route("/me", get(me))
        .route("/admin", get(admin));
}
