//! [`SessionMiddleware`]: the actix-web analogue of the axum `SessionLayer`. Reads the session's
//! token (the cookie, or with [`BearerConfig`] the bearer header), refuses cross-site writes
//! (its [`CsrfPolicy`]) before anything else runs, puts the request's session state in the
//! request's extensions, loads the session (once, and only when the request carries a
//! well-formed token) before the handler's extractors run, writes `Set-Cookie` after login,
//! rotation and logout, keeps session answers out of caches, and hands every [`Rejection`] to
//! the app's rejection handler when one is set.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{
    HeaderMap, HeaderValue, CACHE_CONTROL, COOKIE, HOST, ORIGIN, SET_COOKIE, VARY, WWW_AUTHENTICATE,
};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};

use crate::error::Error;
use crate::store::SessionStore;
use crate::web::{
    BearerConfig, CookieConfig, CsrfPolicy, CsrfRequest, Outgoing, Rejection, RequestSession,
    Shared,
};

/// Turns a [`Rejection`] into the response sent to the client.
type RejectionHandler = Arc<dyn Fn(Rejection, &HttpRequest) -> HttpResponse + Send + Sync>;

/// The middleware that connects a [`SessionStore`] to an actix-web app. Caching headers as
/// the axum layer's: `Vary: Cookie` (and the bearer header, with
/// [`with_bearer`](Self::with_bearer)) on every answer, `Cache-Control: no-store` on every
/// answer to a request with a well-formed session token and on every answer that hands out or
/// ends one.
///
/// Unlike the axum layer, it loads the session of a request that carries a well-formed
/// session token before calling the app, whether a handler asks for it or not (as
/// actix-session does): actix-web polls a handler's extractors together, and this is what lets
/// a guard decide before a body extractor of the same handler looks at the body. A request
/// without such a cookie costs no store call.
///
/// CSRF: the middleware refuses cross-site `POST`, `PUT`, `PATCH` and `DELETE` requests (403
/// `cross_site_request`) before the app sees them, by its [`CsrfPolicy`]: by default
/// [`CsrfPolicy::default`], for a site served over https at `https://{Host}`; see
/// [`with_csrf`](Self::with_csrf) for another one. A refusal goes through the
/// [rejection handler](Self::with_rejection) like every other. Requests that carry their token
/// in the bearer header are not checked (see [`BearerConfig`]).
///
/// ```
/// use std::sync::Arc;
/// use actix_web::{web, App, HttpResponse};
/// use session_core::actix::SessionMiddleware;
/// use session_core::{MemoryStore, SessionConfig};
///
/// let store = Arc::new(MemoryStore::new(SessionConfig::default()));
/// let app = App::new()
///     .wrap(SessionMiddleware::new(store))
///     .route("/", web::get().to(|| async { HttpResponse::Ok().body("hello") }));
/// ```
#[derive(Clone)]
pub struct SessionMiddleware {
    shared: Arc<Shared>,
    rejection: Option<RejectionHandler>,
    /// `None`: turned off with [`SessionMiddleware::without_csrf`].
    csrf: Option<Arc<CsrfPolicy>>,
}

impl std::fmt::Debug for SessionMiddleware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionMiddleware")
            .field("backend", &self.shared.store.backend_name())
            .field("cookie", &self.shared.cookie)
            .field("csrf", &self.csrf)
            .finish_non_exhaustive()
    }
}

impl SessionMiddleware {
    /// A middleware over `store` with the default (secure, `__Host-`) cookie, the default
    /// [`CsrfPolicy`] and JSON rejections.
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
    /// use session_core::actix::SessionMiddleware;
    /// use session_core::web::CsrfPolicy;
    /// use session_core::{MemoryStore, SessionConfig};
    ///
    /// let store = Arc::new(MemoryStore::new(SessionConfig::default()));
    /// let policy = CsrfPolicy::default().with_allowed_origins(["https://app.example"])?;
    /// let middleware = SessionMiddleware::new(store).with_csrf(policy);
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
    /// by default, for API and mobile clients (by default, the middleware reads the cookie
    /// only). A request with both a session cookie and a bearer token is refused (400); one
    /// with the header skips the CSRF check and never gets a cookie; see [`BearerConfig`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use session_core::actix::SessionMiddleware;
    /// use session_core::web::BearerConfig;
    /// use session_core::{MemoryStore, SessionConfig};
    ///
    /// let store = Arc::new(MemoryStore::new(SessionConfig::default()));
    /// let middleware = SessionMiddleware::new(store).with_bearer(BearerConfig::default());
    /// ```
    #[must_use]
    pub fn with_bearer(self, bearer: BearerConfig) -> Self {
        Self {
            shared: self.shared.with_bearer(bearer),
            ..self
        }
    }

    /// Offers Device Bound Session Credentials (feature `dbsc`), as
    /// `SessionLayer::with_dbsc` does for axum: a login's answer asks the browser to bind the
    /// new session to a key it keeps in hardware, and this middleware answers the registration
    /// and refresh endpoints of `config` itself (no routes to add).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use session_core::actix::SessionMiddleware;
    /// use session_core::web::DbscConfig;
    /// use session_core::{MemoryStore, SessionConfig};
    ///
    /// let store = Arc::new(MemoryStore::new(SessionConfig::default()));
    /// let middleware = SessionMiddleware::new(store).with_dbsc(DbscConfig::default());
    /// # let _ = middleware;
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
    /// page for HTML apps. It answers every [`Rejection`] of a request under the middleware:
    /// the CSRF check's, the guards', the extractors', and a handler's `Err(Rejection)` or
    /// `Err(session_core::Error)`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use actix_web::{http::header::LOCATION, HttpResponse, ResponseError};
    /// use session_core::actix::SessionMiddleware;
    /// use session_core::web::Rejection;
    /// use session_core::{MemoryStore, SessionConfig};
    ///
    /// let store = Arc::new(MemoryStore::new(SessionConfig::default()));
    /// let middleware = SessionMiddleware::new(store).with_rejection(|rejection, _req| {
    ///     match rejection {
    ///         Rejection::Unauthenticated { .. } => HttpResponse::SeeOther()
    ///             .insert_header((LOCATION, "/login"))
    ///             .finish(),
    ///         other => other.error_response(),
    ///     }
    /// });
    /// ```
    #[must_use]
    pub fn with_rejection<F>(self, handler: F) -> Self
    where
        F: Fn(Rejection, &HttpRequest) -> HttpResponse + Send + Sync + 'static,
    {
        Self {
            rejection: Some(Arc::new(handler)),
            ..self
        }
    }
}

impl<S, B> Transform<S, ServiceRequest> for SessionMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B, BoxBody>>;
    type Error = actix_web::Error;
    type Transform = SessionService<S>;
    type InitError = ();
    type Future = std::future::Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        std::future::ready(Ok(SessionService {
            inner: Rc::new(service),
            shared: Arc::clone(&self.shared),
            rejection: self.rejection.clone(),
            csrf: self.csrf.clone(),
        }))
    }
}

/// The service [`SessionMiddleware`] wraps around an app (not nameable: its module is private,
/// as nothing but the middleware makes one).
pub struct SessionService<S> {
    inner: Rc<S>,
    shared: Arc<Shared>,
    rejection: Option<RejectionHandler>,
    csrf: Option<Arc<CsrfPolicy>>,
}

impl<S> std::fmt::Debug for SessionService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionService").finish_non_exhaustive()
    }
}

impl<S, B> Service<ServiceRequest> for SessionService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B, BoxBody>>;
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, actix_web::Error>>>>;

    forward_ready!(inner);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let headers = req.headers();
        let bearer = self
            .shared
            .bearer_header()
            .map(|name| headers.get_all(name));
        let ctx = RequestSession::from_headers(
            Arc::clone(&self.shared),
            headers.get_all(COOKIE).map(|v| v.as_bytes()),
            bearer.into_iter().flatten().map(|v| v.as_bytes()),
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
                        let answer =
                            crate::web::in_rejection_handler(|| handler(rejection, req.request()));
                        req.into_response(answer)
                    }
                    None => req.error_response(rejection),
                };
                // Before any session is read: nothing of a session in it, but never worth
                // caching.
                let headers = res.headers_mut();
                headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                add_vary(headers, &self.shared);
                return Box::pin(std::future::ready(Ok(res.map_into_right_body())));
            }
        };
        req.extensions_mut().insert(ctx.clone());
        let rejection = self.rejection.clone();
        let inner = Rc::clone(&self.inner);
        let shared = Arc::clone(&self.shared);
        #[cfg(feature = "dbsc")]
        let endpoint = ctx
            .dbsc()
            .and_then(|dbsc| dbsc.endpoint(req.method().as_str(), req.path()));
        Box::pin(async move {
            #[cfg(feature = "dbsc")]
            if let Some(endpoint) = endpoint {
                let answer = dbsc_response(endpoint, &ctx, &req, rejection.as_ref()).await;
                let mut res = req.into_response(answer).map_into_right_body();
                let status = res.status().as_u16();
                finish(ctx.outgoing(status), res.headers_mut(), &shared);
                return Ok(res);
            }
            if ctx.carries_session() {
                // The outcome stays in the context; an unavailable store is the guards' 503.
                let _ = ctx.session().await;
            }
            let res = inner.call(req).await?;
            let mut res = match rejection.and_then(|handler| custom(&res, &handler)) {
                Some(replaced) => res.into_response(replaced).map_into_right_body(),
                None => res.map_into_left_body(),
            };
            let status = res.status().as_u16();
            finish(ctx.outgoing(status), res.headers_mut(), &shared);
            Ok(res)
        })
    }
}

/// The app's answer for a response made from a [`Rejection`] (or an [`Error`]), if it is one.
fn custom<B>(res: &ServiceResponse<B>, handler: &RejectionHandler) -> Option<HttpResponse> {
    let error = res.response().error()?;
    let rejection = match error.as_error::<Rejection>() {
        Some(rejection) => rejection.clone(),
        None => Rejection::from(error.as_error::<Error>()?),
    };
    // Counted when it became a response; not again if the handler answers with the default one.
    Some(crate::web::in_rejection_handler(|| {
        handler(rejection, res.request())
    }))
}

/// The CSRF policy's verdict on `req`.
fn csrf_check(policy: &CsrfPolicy, req: &ServiceRequest) -> Result<(), Rejection> {
    if !CsrfPolicy::guards(req.method().as_str()) {
        return Ok(());
    }
    let headers = req.headers();
    policy.check(CsrfRequest {
        method: req.method().as_str(),
        origins: headers.get_all(ORIGIN).map(|v| v.as_bytes()),
        sec_fetch_site: headers.get("sec-fetch-site").map(|v| v.as_bytes()),
        host: headers.get(HOST).map(|v| v.as_bytes()),
        uri_authority: req.uri().authority().map(|a| a.as_str()),
        path: req.path(),
    })
}

/// The cookie change, the caching headers and the challenge.
fn finish(outgoing: Outgoing, headers: &mut HeaderMap, shared: &Shared) {
    let Outgoing {
        set_cookie,
        no_store,
        challenge,
        registration,
    } = outgoing;
    if no_store {
        // An answer for one session, or one that hands out or ends a session, must never be
        // cached.
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Some(set_cookie) = set_cookie {
        match HeaderValue::from_str(&set_cookie) {
            Ok(value) => headers.append(SET_COOKIE, value),
            Err(_) => {
                tracing::error!("could not build the Set-Cookie header (check the cookie name)")
            }
        }
    }
    if let Some(challenge) = challenge {
        if !headers.contains_key(WWW_AUTHENTICATE) {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
    }
    if let Some(value) = registration.and_then(|r| HeaderValue::from_str(&r).ok()) {
        headers.insert(
            actix_web::http::header::HeaderName::from_static("secure-session-registration"),
            value,
        );
    }
    add_vary(headers, shared);
}

/// The answer of a DBSC endpoint (`crate::web::dbsc`): the instructions as JSON, or the
/// refusal (through the app's rejection handler, if it has one), with the headers the endpoint
/// adds.
#[cfg(feature = "dbsc")]
async fn dbsc_response(
    endpoint: crate::web::dbsc::Endpoint,
    ctx: &RequestSession,
    req: &ServiceRequest,
    handler: Option<&RejectionHandler>,
) -> HttpResponse {
    use actix_web::ResponseError as _;
    let headers = req.headers();
    let one = |name: &str| {
        let mut values = headers.get_all(name);
        match (values.next(), values.next()) {
            (Some(value), None) => Some(value.as_bytes()),
            _ => None,
        }
    };
    let reply = crate::web::dbsc::answer(endpoint, ctx, one).await;
    let mut res = match reply.outcome {
        Ok(body) => HttpResponse::Ok()
            .content_type("application/json")
            .body(body),
        Err(rejection) => match handler {
            Some(handler) => {
                crate::web::count_rejection(&rejection);
                crate::web::in_rejection_handler(|| handler(rejection, req.request()))
            }
            None => rejection.error_response(),
        },
    };
    for (name, value) in reply.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            res.headers_mut().append(
                actix_web::http::header::HeaderName::from_static(name),
                value,
            );
        }
    }
    res
}

/// Adds `Cookie` (and the bearer header) to the answer's `Vary`, unless there already (or
/// `Vary: *`).
fn add_vary(headers: &mut HeaderMap, shared: &Shared) {
    for name in shared.vary() {
        let present = headers
            .get_all(VARY)
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
