// Guards are async extractors on actix-web too: the handler must be an `async fn`, and the
// message is the axum one.
use actix_web::HttpResponse;
use session_core::{has_role, login_required};

#[has_role("ADMIN")]
fn admin() -> HttpResponse {
    HttpResponse::Ok().finish()
}

#[login_required]
pub fn me() -> HttpResponse {
    HttpResponse::Ok().finish()
}

fn main() {}
