//! The demo server of `session-core`: login with Redis sessions, end to end.
//!
//! Two binaries, one contract: `demo-server` (axum; [`app`] builds its whole HTTP service) and
//! `demo-actix` (actix-web; `actix_app`, feature `actix`). What each route does is written once,
//! in [`api`]; [`setup`] builds the store, accounts, cookie and CSRF policy for both, and for
//! `demo-web`, the HTML app ([`web::app`]). See the README for a curl session and the web app.

pub mod accounts;
#[cfg(feature = "actix")]
pub mod actix_app;
pub mod api;
pub mod errors;
pub mod limits;
pub mod password_queue;
pub mod routes;
pub mod serve;
pub mod settings;
pub mod setup;
pub mod web;

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use axum::response::Response;
use tower::util::BoxCloneService;
use tower::Layer as _;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
use axum::Router;
use session_core::axum::SessionLayer;
use session_core::logging::log_safe;
use session_core::password::Passwords;
use session_core::throttle::{LoginThrottle, ThrottleConfig};
use session_core::web::{BearerConfig, CookieConfig, CsrfPolicy};
use session_core::SessionStore;

use crate::accounts::{Account, AccountStore};
use crate::password_queue::PasswordQueue;

/// Largest request body, in bytes.
pub const BODY_LIMIT: usize = 16 * 1024;

/// A session store that also keeps the login throttle (both shipped stores are).
pub trait Backend: SessionStore + LoginThrottle {}
impl<T: SessionStore + LoginThrottle> Backend for T {}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Sessions and login throttling.
    pub store: Arc<dyn Backend>,
    /// User accounts.
    pub accounts: Arc<dyn AccountStore>,
    /// Password hashing.
    pub passwords: Passwords,
    /// Lockout rule.
    pub throttle: ThrottleConfig,
    /// The bound on password checks waiting at once (`LOGIN_QUEUE_MAX`).
    pub password_queue: PasswordQueue,
    /// How long a session counts as freshly authenticated (`STEP_UP_SECS`).
    pub step_up: std::time::Duration,
    /// Device Bound Session Credentials (`DBSC`, `DBSC_COOKIE_SECS`); `None`: off.
    pub dbsc: Option<session_core::web::DbscConfig>,
    /// What `GET /metrics` serves; `None`: no recorder installed, `/metrics` is 404.
    pub metrics: Option<setup::Metrics>,
}

/// The HTTP service: routes, sessions with their CSRF defence (the session layer's, with the
/// `csrf` policy, before routing), the body limits ([`limits::enforce`]: 413 for a declared length over
/// [`BODY_LIMIT`], 408 for a body past the deadline [`serve::serve`] gives it) and request
/// logging.
pub fn app(state: AppState, cookie: CookieConfig, csrf: CsrfPolicy) -> HttpService {
    use routes::*;
    let store: Arc<dyn SessionStore> = state.store.clone();
    let dbsc = state.dbsc.clone();
    let router = Router::new()
        .route("/livez", get(livez))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/register", post(register))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/reauth", post(reauth))
        .route("/reauth/passkey", post(reauth_passkey))
        .route("/vault", get(vault))
        .route("/bound-only", get(bound_only))
        .route("/admin/impersonate/{username}", post(impersonate))
        .route("/impersonation/stop", post(stop_impersonation))
        .route("/password", put(change_password))
        .route("/me", get(me))
        .route("/admin", get(admin))
        .route("/sessions", get(list_sessions).delete(delete_all_sessions))
        .route("/sessions/others", delete(delete_other_sessions))
        .route("/sessions/{id}", delete(delete_session))
        .route("/history", get(history))
        .route("/admin/users/{username}/history", get(user_history))
        .route("/admin/users/{username}/roles", put(set_roles))
        .route(
            "/admin/users/{username}/sessions",
            delete(revoke_user_sessions),
        )
        .fallback(not_found)
        .with_state(state)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            json_body_refusal as limits::Refuse,
            limits::enforce,
        ))
        .layer(axum::middleware::map_response(errors::json_errors))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        );
    // Around the router, not inside it: the session layer's CSRF check runs before routing, so
    // a cross-site write to any path, existing or not, is refused (and audit-logged), and every
    // answer gets its caching headers (no-store for a request with a session cookie, Vary: Cookie).
    // The contract's API and mobile clients: the token in `Authorization: Bearer` too (the
    // HTML app, `web::app`, keeps the cookie only).
    let mut sessions = SessionLayer::new(store)
        .with_cookie(cookie)
        .with_bearer(BearerConfig::default())
        .with_csrf(csrf);
    if let Some(dbsc) = dbsc {
        // The registration and refresh endpoints are the layer's own.
        sessions = sessions.with_dbsc(dbsc);
    }
    BoxCloneService::new(sessions.layer(router.into_service()))
}

/// The JSON app's answers to [`limits::enforce`]'s refusals.
fn json_body_refusal(refusal: limits::BodyRefusal) -> Response {
    use axum::response::IntoResponse as _;
    match refusal {
        limits::BodyRefusal::TooLarge => errors::payload_too_large().into_response(),
        limits::BodyRefusal::TimedOut => errors::request_timeout().into_response(),
    }
}

/// The request log's span: as tower-http's default, with the client's text escaped and bounded.
pub fn request_span(req: &Request<Body>) -> tracing::Span {
    tracing::info_span!(
        "request",
        method = %log_safe(req.method().as_str()),
        uri = %log_safe(req.uri().path_and_query().map_or("/", |p| p.as_str())),
        version = ?req.version(),
    )
}

/// The whole app as one service (what [`app`] returns and `main` serves).
pub type HttpService = BoxCloneService<Request<Body>, Response, Infallible>;

/// The demo accounts, created when absent.
pub const SEED: [(&str, &str, &[&str]); 2] = [
    ("alice", "alice-password", &["USER"]),
    ("admin", "admin-password", &["USER", "ADMIN"]),
];

/// Creates the [`SEED`] accounts that do not exist yet.
///
/// # Errors
/// The store's error when it cannot be reached.
pub async fn seed(state: &AppState) -> Result<(), session_core::Error> {
    for (username, password, roles) in SEED {
        if let Some(existing) = state.accounts.get(username).await? {
            // Rewriting the roles keeps the store's record of who holds ADMIN complete for
            // accounts made before it was kept.
            state.accounts.set_roles(username, &existing.roles).await?;
            continue;
        }
        let account = Account {
            username: username.to_owned(),
            password_hash: state.passwords.hash(password).await?,
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        };
        if state.accounts.create(&account).await? {
            tracing::info!(user = username, "seeded demo account");
        }
    }
    Ok(())
}
