//! The actix-web 4 integration (feature `actix`): a middleware, and the core's extractors and
//! guards as actix-web extractors. The attribute macros are the same as for axum.
//!
//! ```
//! use std::sync::Arc;
//! use actix_web::{web, App, HttpResponse};
//! use session_core::actix::SessionMiddleware;
//! use session_core::web::{AuthSession, CurrentUser};
//! use session_core::prelude::*;
//!
//! #[login_required]
//! async fn me(user: CurrentUser) -> HttpResponse {
//!     HttpResponse::Ok().body(user.user_id().to_owned())
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
//! let app = App::new()
//!     .wrap(SessionMiddleware::new(store))
//!     .route("/me", web::get().to(me))
//!     .route("/admin", web::get().to(admin_panel))
//!     .route("/login", web::post().to(login));
//! ```
//!
//! Same answers as the axum adapter: 401 `unauthenticated`, 403 `forbidden`, 401
//! `reauthentication_required`, 503 `store_unavailable` (JSON, or the app's
//! [rejection handler](SessionMiddleware::with_rejection)). A guard decides before the request
//! body is read, and each request loads its session at most once however many extractors
//! and guards ask: the middleware loads it before the extractors run when the request carries
//! a well-formed session cookie (actix polls a handler's extractors together), and no store
//! call is made without one. Without macros,
//! [`Require::check`](crate::web::Require::check) inside a handler (`Rejection` is an actix `ResponseError`, so `?` works).

mod extract;
mod middleware;

#[doc(hidden)]
pub use self::extract::GuardFuture;
pub use self::middleware::SessionMiddleware;
