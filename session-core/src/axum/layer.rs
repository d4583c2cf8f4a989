//! [`SessionLayer`]: makes the store reachable from handlers, reads the session's token (the
//! cookie, or with [`BearerConfig`] the bearer header), refuses cross-site writes (its
//! [`CsrfPolicy`]) before anything else runs, loads the session at most once per request
//! (lazily, on the first extractor that needs it), writes `Set-Cookie` after login, rotation
//! and logout, and keeps session answers out of caches.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, COOKIE, HOST, ORIGIN, SET_COOKIE, VARY, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{HeaderValue, Request};
use tower::{Layer, Service};

use crate::axum::extract::Rejected;
use crate::store::SessionStore;
use crate::web::{
    BearerConfig, CookieConfig, CsrfPolicy, CsrfRequest, Outgoing, Rejection, RequestSession,
    Shared,
};

/// Turns a [`Rejection`] into the response sent to the client.
type RejectionHandler = Arc<dyn Fn(Rejection, &Parts) -> Response + Send + Sync>;

/// The tower layer that connects a [`SessionStore`] to an axum router.
///
/// Caching: every answer gets `Vary: Cookie` (it may depend on the cookie; with
/// [`with_bearer`](Self::with_bearer), the bearer header too), and `Cache-Control: no-store`
/// goes on every answer to a request that carries a well-formed session token (live or not:
/// the layer does not load the session just to decide) and on every answer that hands out or
/// ends one, so no shared or browser cache keeps a page meant for one session. An answer's own
/// `Cache-Control` is replaced in those cases.
///
/// CSRF: the layer refuses cross-site `POST`, `PUT`, `PATCH` and `DELETE` requests (403
/// `cross_site_request`) before routing, by its [`CsrfPolicy`]: by default
/// [`CsrfPolicy::default`], for a site served over https at `https://{Host}`; see
/// [`with_csrf`](Self::with_csrf) for another one. A refusal goes through the
/// [rejection handler](Self::with_rejection) like every other. Requests that carry their token
/// in the bearer header are not checked (see [`BearerConfig`]).
///
/// ```
/// use std::sync::Arc;
/// use axum::{routing::get, Router};
/// use session_core::axum::SessionLayer;
/// use session_core::web::CookieConfig;
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
    /// `None`: turned off with [`SessionLayer::without_csrf`].
    csrf: Option<Arc<CsrfPolicy>>,
}

impl std::fmt::Debug for SessionLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLayer")
            .field("backend", &self.shared.store.backend_name())
            .field("cookie", &self.shared.cookie)
            .field("csrf", &self.csrf)
            .finish_non_exhaustive()
    }
}

impl SessionLayer {
    /// A layer over `store` with the default (secure) cookie, the default [`CsrfPolicy`] and
    /// JSON rejections.
    pub fn new(store: Arc<dyn SessionStore>) -> Self {
        Self {
            shared: Shared::new(store, CookieConfig::default()),
            rejection: None,
            csrf: Some(Arc::new(CsrfPolicy::default())),
        }
    }

    /// Sets the rules by which cross-site writes are refused (default: [`CsrfPolicy::default`],
    /// a site served over https at `https://{Host}`).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use axum::http::uri::Scheme;
    /// use session_core::axum::SessionLayer;
    /// use session_core::web::CsrfPolicy;
    /// use session_core::{MemoryStore, SessionConfig};
    ///
    /// let store = Arc::new(MemoryStore::new(SessionConfig::default()));
    /// // Behind a proxy: exactly the origins the site is served at.
    /// let policy = CsrfPolicy::default().with_allowed_origins(["https://app.example"])?;
    /// let layer = SessionLayer::new(store.clone()).with_csrf(policy);
    /// // Local development over plain http (with `CookieConfig::secure(false)`).
    /// let local = SessionLayer::new(store).with_csrf(CsrfPolicy::default().with_site_scheme(Scheme::HTTP));
    /// # Ok::<(), session_core::Error>(())
    /// ```
    #[must_use]
    pub fn with_csrf(self, policy: CsrfPolicy) -> Self {
        Self {
            csrf: Some(Arc::new(policy)),
            ..self
        }
    }

    /// Turns the CSRF check off.
    ///
    /// **Security:** without it, any site a logged-in user visits can make their browser send
    /// writes with their session cookie (the cookie's `SameSite=Lax` stops cross-site `POST`s
    /// from other *sites*, but not from other origins of the same site, nor from browsers that
    /// ignore it). Turn it off only when every state-changing route checks a CSRF token of its
    /// own, or no browser ever holds the cookie.
    #[must_use]
    pub fn without_csrf(self) -> Self {
        Self { csrf: None, ..self }
    }

    /// Sets the cookie's name and attributes.
    #[must_use]
    pub fn with_cookie(self, cookie: CookieConfig) -> Self {
        Self {
            shared: self.shared.with_cookie(cookie),
            ..self
        }
    }

    /// Also accepts the session's token in a request header, `Authorization: Bearer <token>`
    /// by default, for API and mobile clients (by default, the layer reads the cookie only).
    /// A request with both a session cookie and a bearer token is refused (400); one with the
    /// header skips the CSRF check and never gets a cookie; see [`BearerConfig`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use axum::{routing::get, Router};
    /// use session_core::axum::SessionLayer;
    /// use session_core::web::BearerConfig;
    /// use session_core::{MemoryStore, SessionConfig};
    ///
    /// let store = Arc::new(MemoryStore::new(SessionConfig::default()));
    /// // The API accepts both; the browser pages keep the cookie only.
    /// let api: Router = Router::new()
    ///     .route("/api/me", get(|| async { "me" }))
    ///     .layer(SessionLayer::new(store.clone()).with_bearer(BearerConfig::default()));
    /// let pages: Router = Router::new()
    ///     .route("/", get(|| async { "home" }))
    ///     .layer(SessionLayer::new(store));
    /// let app = pages.merge(api);
    /// ```
    #[must_use]
    pub fn with_bearer(self, bearer: BearerConfig) -> Self {
        Self {
            shared: self.shared.with_bearer(bearer),
            ..self
        }
    }

    /// Offers Device Bound Session Credentials (feature `dbsc`): a login's answer asks the
    /// browser to bind the new session to a key it keeps in hardware, and this layer answers
    /// the registration and refresh endpoints of `config` itself (no routes to add). A
    /// browser without DBSC keeps an ordinary session; `#[device_bound]` routes refuse it.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use session_core::axum::SessionLayer;
    /// use session_core::web::DbscConfig;
    /// use session_core::{MemoryStore, SessionConfig};
    ///
    /// let store = Arc::new(MemoryStore::new(SessionConfig::default()));
    /// let layer = SessionLayer::new(store).with_dbsc(DbscConfig::default());
    /// # let _ = layer;
    /// ```
    #[cfg(feature = "dbsc")]
    #[must_use]
    pub fn with_dbsc(self, config: crate::web::DbscConfig) -> Self {
        Self {
            shared: self.shared.with_dbsc(config),
            ..self
        }
    }

    /// Replaces the JSON rejection with your own response, for example a redirect to the login
    /// page for HTML apps. It answers every [`Rejection`] of a request under the layer: the
    /// CSRF check's, the guards', the extractors', a [`Require`](crate::web::Require) route
    /// layer's or check's, and a handler's `Err(session_core::Error)`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use axum::response::{IntoResponse, Redirect};
    /// use session_core::axum::SessionLayer;
    /// use session_core::web::Rejection;
    /// use session_core::{MemoryStore, SessionConfig};
    ///
    /// let store = Arc::new(MemoryStore::new(SessionConfig::default()));
    /// let layer = SessionLayer::new(store).with_rejection(|rejection, _parts| match rejection {
    ///     Rejection::Unauthenticated { .. } => Redirect::to("/login").into_response(),
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
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            shared: Arc::clone(&self.shared),
            rejection: self.rejection.clone(),
            csrf: self.csrf.clone(),
        }
    }
}

/// The service [`SessionLayer`] wraps around a router (not nameable: its module is private, as
/// nothing but the layer makes one).
#[derive(Clone)]
pub struct SessionService<S> {
    inner: S,
    shared: Arc<Shared>,
    rejection: Option<RejectionHandler>,
    csrf: Option<Arc<CsrfPolicy>>,
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
        let headers = req.headers();
        let bearer = self
            .shared
            .bearer_header()
            .map(|name| headers.get_all(name));
        let ctx = RequestSession::from_headers(
            Arc::clone(&self.shared),
            headers.get_all(COOKIE).iter().map(|v| v.as_bytes()),
            bearer
                .iter()
                .flat_map(|values| values.iter().map(|v| v.as_bytes())),
        )
        .and_then(|ctx| match self.csrf.as_deref() {
            Some(policy) if ctx.csrf_applies() => csrf_check(policy, &req).map(|()| ctx),
            _ => Ok(ctx),
        });
        let ctx = match ctx {
            Ok(ctx) => ctx,
            Err(rejection) => {
                let mut res = match &self.rejection {
                    Some(handler) => {
                        crate::web::count_rejection(&rejection);
                        let parts = head(&req);
                        crate::web::in_rejection_handler(|| handler(rejection, &parts))
                    }
                    None => rejection.into_response(),
                };
                // Before any session is read: nothing of a session in it, but never worth
                // caching.
                let headers = res.headers_mut();
                headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                add_vary(headers, &self.shared);
                // Converted inside the future: `R` need not be `Send`, the axum response is.
                return Box::pin(async move { Ok(res.map(R::from)) });
            }
        };
        req.extensions_mut().insert(ctx.clone());
        // The app's rejection handler needs the request's head; copy it only when there is one.
        let custom = self.rejection.clone().map(|handler| (handler, head(&req)));
        let shared = Arc::clone(&self.shared);
        // The clone is the one that was driven to readiness; keep a fresh clone for next time.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        #[cfg(feature = "dbsc")]
        let endpoint = ctx
            .dbsc()
            .and_then(|dbsc| dbsc.endpoint(req.method().as_str(), req.uri().path()));
        Box::pin(async move {
            #[cfg(feature = "dbsc")]
            let mut res = match endpoint {
                Some(endpoint) => dbsc_response(endpoint, &ctx, req.headers(), custom.as_ref())
                    .await
                    .map(R::from),
                None => inner.call(req).await?,
            };
            #[cfg(not(feature = "dbsc"))]
            let mut res = inner.call(req).await?;
            if let Some((handler, parts)) = custom {
                if let Some(Rejected(rejection)) = res.extensions_mut().remove::<Rejected>() {
                    // Counted when it became a response; not again if the handler answers
                    // with the default one.
                    res = crate::web::in_rejection_handler(|| handler(rejection, &parts))
                        .map(R::from);
                }
            }
            let Outgoing {
                set_cookie,
                no_store,
                challenge,
                registration,
            } = ctx.outgoing(res.status().as_u16());
            let headers = res.headers_mut();
            if no_store {
                // An answer for one session, or one that hands out or ends a session, must
                // never be cached.
                headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            }
            if let Some(set_cookie) = set_cookie {
                match HeaderValue::from_str(&set_cookie) {
                    Ok(value) => {
                        headers.append(SET_COOKIE, value);
                    }
                    Err(_) => tracing::error!(
                        "could not build the Set-Cookie header (check the cookie name)"
                    ),
                }
            }
            if let Some(value) = registration.and_then(|r| HeaderValue::from_str(&r).ok()) {
                headers.insert("secure-session-registration", value);
            }
            if let Some(challenge) = challenge {
                if !headers.contains_key(WWW_AUTHENTICATE) {
                    headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
                }
            }
            add_vary(headers, &shared);
            Ok(res)
        })
    }
}

/// The CSRF policy's verdict on `req`.
fn csrf_check<B>(policy: &CsrfPolicy, req: &Request<B>) -> Result<(), Rejection> {
    if !CsrfPolicy::guards(req.method().as_str()) {
        return Ok(());
    }
    let headers = req.headers();
    policy.check(CsrfRequest {
        method: req.method().as_str(),
        origins: headers.get_all(ORIGIN).iter().map(|v| v.as_bytes()),
        sec_fetch_site: headers.get("sec-fetch-site").map(|v| v.as_bytes()),
        host: headers.get(HOST).map(|v| v.as_bytes()),
        uri_authority: req.uri().authority().map(|a| a.as_str()),
        path: req.uri().path(),
    })
}

/// Adds `Cookie` (and the bearer header) to the answer's `Vary`, unless there already (or
/// `Vary: *`).
fn add_vary(headers: &mut http::HeaderMap, shared: &Shared) {
    for name in shared.vary() {
        let present = headers
            .get_all(VARY)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|v| {
                let v = v.trim();
                v == "*" || v.eq_ignore_ascii_case(name)
            });
        if !present {
            if let Ok(value) = HeaderValue::from_str(name) {
                headers.append(VARY, value);
            }
        }
    }
}

/// The answer of a DBSC endpoint (`crate::web::dbsc`): the instructions as JSON, or the
/// refusal (through the app's rejection handler, if it has one), with the headers the endpoint
/// adds. The handler runs here, before the headers are added, so that its page keeps them (a
/// refresh's 403 is of no use to the browser without its `Secure-Session-Challenge`).
#[cfg(feature = "dbsc")]
async fn dbsc_response(
    endpoint: crate::web::dbsc::Endpoint,
    ctx: &RequestSession,
    headers: &http::HeaderMap,
    handler: Option<&(RejectionHandler, Parts)>,
) -> Response {
    let one = |name: &str| {
        let mut values = headers.get_all(name).iter();
        match (values.next(), values.next()) {
            (Some(value), None) => Some(value.as_bytes()),
            _ => None,
        }
    };
    let reply = crate::web::dbsc::answer(endpoint, ctx, one).await;
    let mut res = match reply.outcome {
        Ok(body) => ([(http::header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(rejection) => match handler {
            Some((handler, parts)) => {
                crate::web::count_rejection(&rejection);
                let mut res = crate::web::in_rejection_handler(|| handler(rejection, parts));
                // Answered: the layer must not hand it to the handler a second time.
                res.extensions_mut().remove::<Rejected>();
                res
            }
            None => rejection.into_response(),
        },
    };
    for (name, value) in reply.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            res.headers_mut().append(name, value);
        }
    }
    res
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
