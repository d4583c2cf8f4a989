// Every attribute, on handlers that also take other extractors (the body extractor last), and
// each handler still routes: the guard is one more `FromRequestParts` extractor, put first.
use axum::extract::Path;
use axum::routing::{get, post};
use axum::Json;
use serde::Deserialize;
use session_core::{
    device_bound, has_all_permissions, has_all_roles, has_any_permission, has_any_role,
    has_permission, has_role, login_required,
};

#[derive(Deserialize)]
struct Order {
    item: String,
}

#[login_required]
async fn me() -> &'static str {
    "me"
}

#[has_role("ADMIN")]
async fn delete_user(Path(id): Path<u32>) -> String {
    format!("deleted {id}")
}

#[has_any_role("ADMIN", "SUPPORT")]
async fn ticket(Path(id): Path<u32>) -> String {
    format!("ticket {id}")
}

#[has_all_roles("ADMIN", "AUDITOR")]
async fn audit(Path((year, month)): Path<(u16, u8)>) -> String {
    format!("{year}-{month}")
}

#[has_permission("orders:read")]
async fn order(Path(id): Path<u32>) -> Json<u32> {
    Json(id)
}

#[has_any_permission("orders:write", "orders:admin")]
async fn create_order(Json(order): Json<Order>) -> String {
    order.item
}

#[has_all_permissions("orders:read", "orders:write")]
async fn update_order(Path(id): Path<u32>, Json(order): Json<Order>) -> String {
    format!("{id}: {}", order.item)
}

// A device-bound session (DBSC), with the other guards stacked.
#[device_bound]
#[has_role("ADMIN")]
async fn transfer(Path(id): Path<u32>) -> String {
    format!("sent {id}")
}

// Guards stack: both must pass.
#[login_required]
#[has_permission("orders:read")]
async fn stacked(body: String) -> String {
    body
}

// axum's own handler check agrees that the guarded function is a handler.
#[has_role("ADMIN")]
#[axum::debug_handler]
async fn checked(Path(id): Path<u32>) -> String {
    id.to_string()
}

fn main() {
    let _app: axum::Router = axum::Router::new()
        .route("/me", get(me))
        .route("/users/{id}", axum::routing::delete(delete_user))
        .route("/tickets/{id}", get(ticket))
        .route("/audit/{year}/{month}", get(audit))
        .route("/orders", post(create_order))
        .route("/orders/{id}", get(order).put(update_order))
        .route("/stacked", post(stacked))
        .route("/transfer/{id}", post(transfer))
        .route("/checked/{id}", get(checked));
}
