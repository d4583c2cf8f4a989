//! [`SessionLayer`]: makes the store reachable from handlers, reads the session cookie, loads the
//! session at most once per request (lazily, on the first extractor that needs it), writes
//! `Set-Cookie` after login, rotation and logout, and keeps session answers out of caches.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use axum::body::Body;
use axum::response::Response;
use http::header::{CACHE_CONTROL, COOKIE, SET_COOKIE, VARY};
use http::request::Parts;
use http::{HeaderValue, Request};
use tower::{Layer, Service};

use crate::axum::extract::Rejected;
use crate::store::SessionStore;
use crate::web::{CookieConfig, Rejection, RequestSession, Shared, UserLoader, Users};

/// Turns a [`Rejection`] into the response sent to the client.
type RejectionHandler = Arc<dyn Fn(Rejection, &Parts) -> Response + Send + Sync>;

/// The tower layer that connects a [`SessionStore`] to an axum router.
///
/// Caching: every answer gets `Vary: Cookie` (it may depend on the cookie), and
/// `Cache-Control: no-store` goes on every answer to a request that carries a well-formed
/// session cookie (live or not: the layer does not load the session just to decide) and on
/// every answer that sets or clears the cookie, so no shared or browser cache keeps a page
/// meant for one session. An answer's own `Cache-Control` is replaced in those cases.
///
/// ```
/// use std::sync::Arc;
/// use axum::{routing::get, Router};
/// use session_core::axum::{CookieConfig, SessionLayer};
/// use session_core::{MemoryStore, SessionConfig};
///
/// let store = Arc::new(MemoryStore::new(SessionConfig::default()));
/// let app: Router = Router::new()
///     .route("/", get(|| async { "hello" }))
///     .layer(SessionLayer::new(store).with_cookie(CookieConfig::default()));
/// ```
#[derive(Clone)]
pub struct SessionLayer {
    shared: Arc<Shared>,
    /// `None`: the default JSON answers (no work on the way out).
    rejection: Option<RejectionHandler>,
}

impl std::fmt::Debug for SessionLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLayer")
            .field("backend", &self.shared.store.backend_name())
            .field("cookie", &self.shared.cookie)
            .finish_non_exhaustive()
    }
}

impl SessionLayer {
    /// A layer over `store` with the default (secure) cookie and JSON rejections.
    pub fn new(store: Arc<dyn SessionStore>) -> Self {
        Self {
            shared: Shared::new(store, CookieConfig::default()),
            rejection: None,
        }
    }

    /// Sets the cookie's name and attributes.
    #[must_use]
    pub fn with_cookie(self, cookie: CookieConfig) -> Self {
        Self {
            shared: self.shared.with_cookie(cookie),
            ..self
        }
    }

    /// Registers the application's [`UserLoader`], which the
    /// [`Authenticated<U>`](crate::web::Authenticated) extractor uses to hand handlers the
    /// application's user (loaded at most once per request).
    #[must_use]
    pub fn with_user_loader<L: UserLoader>(self, loader: L) -> Self {
        Self {
            shared: self.shared.with_users(Users::new(loader)),
            ..self
        }
    }

    /// Replaces the JSON rejection with your own response, for example a redirect to the login
    /// page for HTML apps. It answers every [`Rejection`] of a request under the layer: the
    /// guards', the extractors', a [`Require`](crate::web::Require) route layer's or check's,
    /// the CSRF layer's (when inside this layer) and a handler's `Err(session_core::Error)`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use axum::response::{IntoResponse, Redirect};
    /// use session_core::axum::{Rejection, SessionLayer};
    /// use session_core::{MemoryStore, SessionConfig};
    ///
    /// let store = Arc::new(MemoryStore::new(SessionConfig::default()));
    /// let layer = SessionLayer::new(store).with_rejection(|rejection, _parts| match rejection {
    ///     Rejection::Unauthenticated => Redirect::to("/login").into_response(),
    ///     other => other.into_response(),
    /// });
    /// ```
    #[must_use]
    pub fn with_rejection<F>(self, handler: F) -> Self
    where
        F: Fn(Rejection, &Parts) -> Response + Send + Sync + 'static,
    {
        Self {
            rejection: Some(Arc::new(handler)),
            ..self
        }
    }

    /// The store this layer serves.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.shared.store
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            shared: Arc::clone(&self.shared),
            rejection: self.rejection.clone(),
        }
    }
}

/// The service [`SessionLayer`] wraps around a router.
#[derive(Clone)]
pub struct SessionService<S> {
    inner: S,
    shared: Arc<Shared>,
    rejection: Option<RejectionHandler>,
}

impl<S> std::fmt::Debug for SessionService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionService").finish_non_exhaustive()
    }
}

impl<S, B, R> Service<Request<B>> for SessionService<S>
where
    S: Service<Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    R: From<Body>,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let token = self
            .shared
            .cookie
            .token_from(req.headers().get_all(COOKIE).iter().map(|v| v.as_bytes()));
        let ctx = RequestSession::new(Arc::clone(&self.shared), token);
        req.extensions_mut().insert(ctx.clone());
        // The app's rejection handler needs the request's head; copy it only when there is one.
        let custom = self.rejection.clone().map(|handler| (handler, head(&req)));
        // The clone is the one that was driven to readiness; keep a fresh clone for next time.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let mut res = inner.call(req).await?;
            if let Some((handler, parts)) = custom {
                if let Some(Rejected(rejection)) = res.extensions_mut().remove::<Rejected>() {
                    // Counted when it became a response; not again if the handler answers
                    // with the default one.
                    res = crate::web::in_rejection_handler(|| handler(rejection, &parts))
                        .map(R::from);
                }
            }
            let cookie_change = ctx.take_cookie_header();
            let headers = res.headers_mut();
            if ctx.carries_session() || cookie_change.is_some() {
                // An answer for one session, or one that hands out or ends a session, must
                // never be cached.
                headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            }
            if let Some(set_cookie) = cookie_change {
                match HeaderValue::from_str(&set_cookie) {
                    Ok(value) => {
                        headers.append(SET_COOKIE, value);
                    }
                    Err(_) => tracing::error!(
                        "could not build the Set-Cookie header (check the cookie name)"
                    ),
                }
            }
            add_vary_cookie(headers);
            Ok(res)
        })
    }
}

/// Adds `Cookie` to the answer's `Vary`, unless it is already there (or `Vary: *`).
fn add_vary_cookie(headers: &mut http::HeaderMap) {
    let present = headers
        .get_all(VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| {
            let v = v.trim();
            v == "*" || v.eq_ignore_ascii_case("cookie")
        });
    if !present {
        headers.append(VARY, HeaderValue::from_static("Cookie"));
    }
}

/// A copy of the request's method, URI, version and headers, for the rejection handler.
fn head<B>(req: &Request<B>) -> Parts {
    let mut copy = Request::new(());
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    copy.into_parts().0
}
