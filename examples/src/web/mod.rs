//! `demo-web`: a server-rendered HTML app on the same accounts and sessions as `demo-server`.
//!
//! Pages: `/` (anyone), `/login` (form), `/account` (any logged-in user, `#[login_required]`),
//! `/password` (the password change) and `/reauth` (the password again, for a page that needs a
//! recent entry), `/admin` (`#[has_role("ADMIN")]`) with its impersonation form
//! (`POST /admin/impersonate`; `POST /impersonation/stop` from the banner every page of an
//! impersonation session shows), `/sessions` ("Devices": the user's sessions with their
//! device, network and badges, "Device-bound" among them, each can be ended), `/bound-only`
//! (a device-bound session only, `#[device_bound]`: with `DBSC=true` a browser that supports
//! Device Bound Session Credentials binds its session at login), `/history` (the user's login
//! history),
//! and a cart on `/` (`POST /cart`) that anonymous visitors fill before login (an anonymous
//! session, created at the first addition) and that the login carries over.
//! An anonymous request for a protected page is sent to `/login?next=<the page>`
//! ([`errors::html_rejection`] through `SessionLayer::with_rejection`), with `&ended=<reason>`
//! when its session ended for a reason the store knows (the login page says it); after login
//! the browser returns there, if `next` is a path on this site ([`next::safe_next`]). Every
//! page is sent with `Cache-Control: no-store`.

pub mod errors;
pub mod html;
pub mod next;
pub mod pages;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use session_core::axum::SessionLayer;
use session_core::web::CookieConfig;
use session_core::web::CsrfPolicy;
use session_core::SessionStore;
use tower::util::BoxCloneService;
use tower::Layer as _;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::{limits, request_span, routes, AppState, HttpService, BODY_LIMIT};

/// The HTML app: pages, sessions (with HTML rejections, a CSRF refusal's among them) and their
/// CSRF defence (with the `csrf` policy, before routing), the
/// body limits ([`limits::enforce`], answered with pages) and request logging.
pub fn app(state: AppState, cookie: CookieConfig, csrf: CsrfPolicy) -> HttpService {
    use pages::*;
    let store: Arc<dyn SessionStore> = state.store.clone();
    let dbsc = state.dbsc.clone();
    let router = Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login_submit))
        .route("/logout", post(logout))
        .route("/cart", post(add_to_cart))
        .route("/account", get(account))
        .route("/password", get(password_page).post(change_password))
        .route("/reauth", get(reauth_page).post(reauth_submit))
        .route("/admin", get(admin))
        .route("/admin/impersonate", post(impersonate))
        .route("/impersonation/stop", post(stop_impersonation))
        .route("/bound-only", get(bound_only))
        .route("/sessions", get(sessions))
        .route("/sessions/others/end", post(end_other_sessions))
        .route("/sessions/{id}/end", post(end_session))
        .route("/history", get(history))
        .route("/health", get(routes::health))
        .route("/metrics", get(routes::metrics))
        .fallback(not_found)
        .with_state(state)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            errors::WebError::body_refusal as limits::Refuse,
            limits::enforce,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        );
    // As in the JSON app: the session layer (and its CSRF check) around the router.
    let mut sessions = SessionLayer::new(store)
        .with_cookie(cookie)
        .with_csrf(csrf)
        .with_rejection(errors::html_rejection);
    if let Some(dbsc) = dbsc {
        // The registration and refresh endpoints are the layer's own (no routes here).
        sessions = sessions.with_dbsc(dbsc);
    }
    BoxCloneService::new(sessions.layer(router.into_service()))
}
