//! The axum integration (feature `axum`): a layer, and the core's extractors and guards as
//! axum extractors.
//!
//! ```
//! use std::sync::Arc;
//! use axum::{routing::{get, post}, Json, Router};
//! use session_core::axum::SessionLayer;
//! use session_core::web::{AuthSession, CurrentUser};
//! use session_core::prelude::*;
//!
//! #[login_required]
//! async fn me(user: CurrentUser) -> String {
//!     user.user_id().to_owned()
//! }
//!
//! #[has_role("ADMIN")]
//! async fn admin_panel() -> &'static str {
//!     "welcome, admin"
//! }
//!
//! async fn login(mut auth: AuthSession) -> Result<String, Error> {
//!     // Check the password first; then:
//!     let session = auth.login(NewSession::new("alice").with_roles(["USER"])).await?;
//!     Ok(session.user_id().to_owned())
//! }
//!
//! let store = Arc::new(MemoryStore::new(SessionConfig::default()));
//! let app: Router = Router::new()
//!     .route("/me", get(me))
//!     .route("/admin", get(admin_panel))
//!     .route("/login", post(login))
//!     .layer(SessionLayer::new(store));
//! ```
//!
//! Without macros, the same checks are route layers or calls ([`Require`](crate::web::Require)):
//!
//! ```
//! use axum::{routing::get, Router};
//! use session_core::web::Require;
//!
//! let admin: Router = Router::new()
//!     .route("/admin", get(|| async { "welcome, admin" }))
//!     .route_layer(Require::role("ADMIN"));
//! ```
//!
//! | outcome | answer |
//! |---|---|
//! | no cookie, a malformed one, or a session that ended | 401 `unauthenticated` |
//! | a session cookie and a bearer token at once (with [`SessionLayer::with_bearer`]) | 400 `bad_request`, before any handler |
//! | logged in without the role or permission | 403 `forbidden` |
//! | store unreachable | 503 `store_unavailable` (never the handler) |
//!
//! Each request loads its session at most once, however many extractors and guards it has,
//! and not at all when it carries no session cookie.
//!
//! `#[axum::debug_handler]` goes **below** the guard attribute (`#[login_required]` first,
//! then `#[axum::debug_handler]`), so that it sees the guard argument the attribute adds.

mod extract;
mod layer;
mod require;

pub use self::layer::SessionLayer;
