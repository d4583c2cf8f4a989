//! [`SessionLayer`]: makes the store reachable from handlers, reads the session cookie, loads the
//! session at most once per request (lazily, on the first extractor that needs it), writes
//! `Set-Cookie` after login, rotation and logout, and keeps session answers out of caches.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context as TaskContext, Poll};

use axum::response::Response;
use http::header::{CACHE_CONTROL, SET_COOKIE, VARY};
use http::request::Parts;
use http::{HeaderValue, Request};
use tower::{Layer, Service};

use crate::axum::cookie::CookieConfig;
use crate::axum::rejection::{default_handler, Rejection, RejectionHandler};
use crate::record::Session;
use crate::store::SessionStore;
use crate::token::Token;

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
}

pub(crate) struct Shared {
    pub(crate) store: Arc<dyn SessionStore>,
    pub(crate) cookie: CookieConfig,
    rejection: RejectionHandler,
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
            shared: Arc::new(Shared {
                store,
                cookie: CookieConfig::default(),
                rejection: default_handler(),
            }),
        }
    }

    fn with_shared(self, f: impl FnOnce(&mut Shared)) -> Self {
        let mut shared = Shared {
            store: Arc::clone(&self.shared.store),
            cookie: self.shared.cookie.clone(),
            rejection: Arc::clone(&self.shared.rejection),
        };
        f(&mut shared);
        Self {
            shared: Arc::new(shared),
        }
    }

    /// Sets the cookie's name and attributes.
    #[must_use]
    pub fn with_cookie(self, cookie: CookieConfig) -> Self {
        self.with_shared(|s| s.cookie = cookie)
    }

    /// Replaces the JSON rejection with your own response, for example a redirect to the login
    /// page for HTML apps:
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
        self.with_shared(|s| s.rejection = Arc::new(handler))
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
        }
    }
}

/// The service [`SessionLayer`] wraps around a router.
#[derive(Clone)]
pub struct SessionService<S> {
    inner: S,
    shared: Arc<Shared>,
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
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let token = self.shared.cookie.token_from(req.headers());
        let carries_session = token.is_some();
        let ctx = RequestSession::new(Arc::clone(&self.shared), token);
        req.extensions_mut().insert(ctx.clone());
        // The clone is the one that was driven to readiness; keep a fresh clone for next time.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let mut res = inner.call(req).await?;
            let cookie_change = ctx.take_cookie_header();
            let headers = res.headers_mut();
            if carries_session || cookie_change.is_some() {
                // An answer for one session, or one that hands out or ends a session, must
                // never be cached.
                headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            }
            if let Some(Some(set_cookie)) = cookie_change {
                headers.append(SET_COOKIE, set_cookie);
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

/// Per-request session state, kept in the request's extensions.
#[derive(Clone)]
pub(crate) struct RequestSession(Arc<Inner>);

struct Inner {
    shared: Arc<Shared>,
    state: Mutex<State>,
}

struct State {
    token: Option<Token>,
    loaded: Option<Loaded>,
    cookie: Option<CookieChange>,
}

#[derive(Clone)]
enum Loaded {
    /// A `Session` is cheap to clone (its record is shared).
    Session(Session),
    None,
    Unavailable,
}

enum CookieChange {
    Set(Token),
    Expire,
}

impl RequestSession {
    fn new(shared: Arc<Shared>, token: Option<Token>) -> Self {
        // Without a token there is nothing to load: settle that now, without a store call.
        let loaded = if token.is_none() {
            Some(Loaded::None)
        } else {
            None
        };
        Self(Arc::new(Inner {
            shared,
            state: Mutex::new(State {
                token,
                loaded,
                cookie: None,
            }),
        }))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The context the layer put in the request, or the `MissingLayer` response.
    pub(crate) fn from_parts(parts: &Parts) -> Result<Self, MissingLayer> {
        parts.extensions.get::<Self>().cloned().ok_or_else(|| {
            tracing::error!(
                "a session extractor ran without session_core::axum::SessionLayer on the router"
            );
            MissingLayer
        })
    }

    pub(crate) fn store(&self) -> &Arc<dyn SessionStore> {
        &self.0.shared.store
    }

    pub(crate) fn reject(&self, rejection: Rejection, parts: &Parts) -> Response {
        (self.0.shared.rejection)(rejection, parts)
    }

    pub(crate) fn token(&self) -> Option<Token> {
        self.state().token.clone()
    }

    /// The request's session, loaded from the store on the first call only.
    pub(crate) async fn session(&self) -> Result<Option<Session>, Rejection> {
        let (cached, token) = {
            let state = self.state();
            (state.loaded.clone(), state.token.clone())
        };
        let loaded = match (cached, token) {
            (Some(loaded), _) => loaded,
            (None, None) => Loaded::None,
            (None, Some(token)) => {
                let loaded = match self.store().load(&token).await {
                    Ok(Some(session)) => Loaded::Session(session),
                    Ok(None) => Loaded::None,
                    Err(e) => {
                        tracing::warn!(error = %e, "session store unavailable; request denied");
                        Loaded::Unavailable
                    }
                };
                self.state().loaded = Some(loaded.clone());
                loaded
            }
        };
        match loaded {
            Loaded::Session(s) => Ok(Some(s)),
            Loaded::None => Ok(None),
            Loaded::Unavailable => Err(Rejection::StoreUnavailable),
        }
    }

    /// Records a new session for this request and the cookie that carries it.
    pub(crate) fn started(&self, token: Token, session: Session) -> Session {
        let mut state = self.state();
        state.token = Some(token.clone());
        state.loaded = Some(Loaded::Session(session.clone()));
        state.cookie = Some(CookieChange::Set(token));
        session
    }

    /// Records that the session ended and the cookie must be dropped.
    pub(crate) fn ended(&self) {
        let mut state = self.state();
        state.token = None;
        state.loaded = Some(Loaded::None);
        state.cookie = Some(CookieChange::Expire);
    }

    /// Records new data of the loaded session (after it was saved).
    pub(crate) fn replace_session(&self, session: Session) {
        self.state().loaded = Some(Loaded::Session(session));
    }

    /// `None` when the cookie stays as it is; `Some(None)` when it changes but the header
    /// could not be built (logged).
    fn take_cookie_header(&self) -> Option<Option<HeaderValue>> {
        let change = self.state().cookie.take()?;
        let cookie = &self.0.shared.cookie;
        let header = match change {
            CookieChange::Set(token) => {
                cookie.set(&token, self.store().config().absolute_timeout())
            }
            CookieChange::Expire => cookie.expire(),
        };
        if header.is_none() {
            tracing::error!("could not build the Set-Cookie header (check the cookie name)");
        }
        Some(header)
    }
}

/// The router has no [`SessionLayer`]; answers 500 [`Rejection::MissingLayer`].
#[derive(Debug)]
pub(crate) struct MissingLayer;

impl From<MissingLayer> for Response {
    fn from(_: MissingLayer) -> Response {
        Rejection::MissingLayer.json_response()
    }
}
