// Role and permission names are arbitrary text up to 100 characters: quotes, backslashes,
// spaces and non-ASCII are spelled exactly, one `char` per type node.
use axum::routing::get;
use session_core::{has_any_permission, has_role};

#[has_role("RRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRR")]
async fn longest() {}

#[has_any_permission("it's", "back\\slash", "with space", "équipe", "🦀", r"raw\str")]
async fn odd_names() {}

fn main() {
    let _app: axum::Router = axum::Router::new()
        .route("/a", get(longest))
        .route("/b", get(odd_names));
}
