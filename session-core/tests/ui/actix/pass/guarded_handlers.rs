// The same attributes on actix-web handlers: the guard is one more `FromRequest` extractor, put
// first, and each handler still registers as a route.
use actix_web::web::{self, Json, Path};
use actix_web::{App, HttpResponse};
use serde::Deserialize;
use session_core::web::{AuthSession, CurrentUser};
use session_core::{
    device_bound, fresh_login, has_any_role, has_permission, has_role, login_required,
};

#[derive(Deserialize)]
struct Order {
    item: String,
}

#[login_required]
async fn me(user: CurrentUser) -> HttpResponse {
    HttpResponse::Ok().body(user.user_id().to_owned())
}

#[has_role("ADMIN")]
async fn delete_user(id: Path<u32>) -> String {
    format!("deleted {}", id.into_inner())
}

#[has_any_role("ADMIN", "SUPPORT")]
async fn ticket(_auth: AuthSession) -> &'static str {
    "ticket"
}

#[has_permission("orders:write")]
async fn create_order(order: Json<Order>) -> String {
    order.into_inner().item
}

#[fresh_login(max_age = "5m")]
async fn change_password() -> Result<HttpResponse, session_core::Error> {
    Ok(HttpResponse::NoContent().finish())
}

#[device_bound]
async fn transfer() -> HttpResponse {
    HttpResponse::Ok().finish()
}

fn main() {
    let _app = App::new()
        .route("/transfer", web::post().to(transfer))
        .route("/me", web::get().to(me))
        .route("/users/{id}", web::delete().to(delete_user))
        .route("/tickets", web::get().to(ticket))
        .route("/orders", web::post().to(create_order))
        .route("/password", web::put().to(change_password));
}
