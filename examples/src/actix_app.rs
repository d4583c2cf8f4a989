//! `demo-actix`: the same HTTP contract as `demo-server`, on actix-web. The handlers extract
//! their inputs, call [`crate::api`] (shared with the axum binary) and write the answer;
//! sessions, guards, cookies and CSRF come from `session_core::actix`.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::web::{self, Data, Path};
use actix_web::{
    App, FromRequest, HttpMessage as _, HttpRequest, HttpResponse, HttpResponseBuilder, HttpServer,
    ResponseError,
};
use futures_util::future::{ready, LocalBoxFuture};
use futures_util::StreamExt as _;
use serde::de::DeserializeOwned;
use serde_json::Value;
use session_core::actix::SessionMiddleware;
use session_core::logging::log_safe;
use session_core::prelude::*;
use session_core::web::{AuthSession, BearerConfig, CookieConfig, CsrfPolicy, CurrentUser};
use session_core::SessionStore;
use tracing::Instrument as _;

use crate::api::{
    self, Credentials, LoginBody, PasskeyBody, PasswordBody, ReauthBody, Requester, RolesBody,
};
use crate::errors::{json_object, payload_too_large, request_timeout, ApiError};
use crate::serve::ReadTimeouts;
use crate::{AppState, BODY_LIMIT};

fn status(code: axum::http::StatusCode) -> StatusCode {
    StatusCode::from_u16(code.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        status(ApiError::status(self))
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponseBuilder::new(self.status_code());
        if let Some(secs) = self.retry_after() {
            res.insert_header((header::RETRY_AFTER, HeaderValue::from(secs)));
        }
        if self.close() {
            res.force_close();
        }
        res.json(self.body())
    }
}

/// A JSON **object** body of at most [`BODY_LIMIT`] bytes, with the demo's JSON errors (413
/// with `Connection: close` over the limit, 400 otherwise). Reads the body only when polled,
/// so a guard of the same handler decides first.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.as_bytes().to_vec());
        let over_limit = declared_over_limit(req.headers());
        let mut payload = payload.take();
        Box::pin(async move {
            if over_limit {
                return Err(payload_too_large());
            }
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk =
                    chunk.map_err(|e| ApiError::bad_request(format!("unreadable body: {e}")))?;
                if body.len() + chunk.len() > BODY_LIMIT {
                    return Err(payload_too_large());
                }
                body.extend_from_slice(&chunk);
            }
            json_object(content_type.as_deref(), &body).map(Self)
        })
    }
}

/// True when `Content-Length` declares more than [`BODY_LIMIT`] bytes.
fn declared_over_limit(headers: &header::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > BODY_LIMIT as u64)
}

/// The body limits, as the axum apps' [`crate::limits`]: 413 at once for a declared length
/// over [`BODY_LIMIT`], whatever the route (the body is not read), and 408 for a request whose
/// body has not arrived whole `timeout` after its head, whatever the handler made of the failed
/// read. actix-web's own timeouts cover the request head (`client_request_timeout`) and idle
/// connections only.
///
/// The request's payload is kept alive until its answer is written ([`HoldPayload`]): actix-web
/// *drains* a chunked body whose reader is gone, to keep the connection, for as long as the
/// client trickles it; while the reader is alive, it closes the connection after the answer
/// instead (with `client_disconnect_timeout` to linger).
fn body_limits<S, B>(
    mut req: ServiceRequest,
    srv: &S,
    timeout: Duration,
) -> LocalBoxFuture<'static, Result<ServiceResponse<HoldPayload<EitherBody<B>>>, actix_web::Error>>
where
    S: actix_web::dev::Service<
        ServiceRequest,
        Response = ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    let hold = |payload| move |_: &mut _, body| HoldPayload { body, payload };
    if declared_over_limit(req.headers()) {
        let refused = payload_too_large().error_response();
        let res = req.into_response(refused).map_into_right_body();
        return Box::pin(ready(Ok(res.map_body(hold(None)))));
    }
    let payload = req.take_payload();
    if matches!(payload, Payload::None) {
        let fut = srv.call(req);
        return Box::pin(async move { Ok(fut.await?.map_into_left_body().map_body(hold(None))) });
    }
    let payload = Rc::new(RefCell::new(payload));
    let passed = Rc::new(Cell::new(false));
    let read: Pin<Box<dyn futures_util::Stream<Item = _>>> = Box::pin(DeadlinePayload {
        inner: payload.clone(),
        deadline: tokio::time::Instant::now() + timeout,
        sleep: None,
        passed: passed.clone(),
    });
    req.set_payload(Payload::from(read));
    let fut = srv.call(req);
    Box::pin(async move {
        let res = fut.await?;
        let res = if passed.get() {
            let (req, _) = res.into_parts();
            ServiceResponse::new(req, request_timeout().error_response()).map_into_right_body()
        } else {
            res.map_into_left_body()
        };
        Ok(res.map_body(hold(Some(payload))))
    })
}

pin_project_lite::pin_project! {
    /// An answer's body that holds its request's payload until the body is written (see
    /// [`body_limits`]).
    struct HoldPayload<B> {
        #[pin]
        body: B,
        payload: Option<Rc<RefCell<Payload>>>,
    }
}

impl<B: MessageBody> MessageBody for HoldPayload<B> {
    type Error = B::Error;

    fn size(&self) -> actix_web::body::BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<web::Bytes, Self::Error>>> {
        self.project().body.poll_next(cx)
    }
}

/// The payload as the handler reads it: fails with `TimedOut` when asked for data it does not
/// have after its deadline. Data that is there is always given, however late the reader comes.
struct DeadlinePayload {
    inner: Rc<RefCell<Payload>>,
    deadline: tokio::time::Instant,
    /// Made at the first wait: a body read at once needs no timer.
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    passed: Rc<Cell<bool>>,
}

impl futures_util::Stream for DeadlinePayload {
    type Item = Result<web::Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Poll::Ready(item) = this.inner.borrow_mut().poll_next_unpin(cx) {
            return Poll::Ready(item);
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        ready!(sleep.as_mut().poll(cx));
        this.passed.set(true);
        Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the request body did not arrive in time",
        )))))
    }
}

fn json(value: Value) -> HttpResponse {
    HttpResponse::Ok().json(value)
}

fn no_content() -> HttpResponse {
    HttpResponse::NoContent().finish()
}

fn user_agent(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// The client's address (the connection's peer; behind a reverse proxy, the proxy's).
fn client_addr(req: &HttpRequest) -> Option<std::net::IpAddr> {
    req.peer_addr().map(|a| a.ip())
}

/// The request's client and `User-Agent`, for the login history.
fn requester(req: &HttpRequest) -> Requester {
    Requester {
        client: client_addr(req),
        user_agent: user_agent(req),
    }
}

async fn livez() -> HttpResponse {
    json(api::livez())
}

async fn metrics(state: Data<AppState>) -> HttpResponse {
    match &state.metrics {
        Some(metrics) => HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, crate::setup::METRICS_CONTENT_TYPE))
            .body(metrics.render()),
        None => ApiError::not_found("no such route").error_response(),
    }
}

async fn health(state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(json(api::health(&state).await?))
}

async fn register(
    state: Data<AppState>,
    req: HttpRequest,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(api::register(&state, client_addr(&req), body).await?))
}

async fn login(
    state: Data<AppState>,
    req: HttpRequest,
    mut auth: AuthSession,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    Ok(json(
        api::login(&state, &requester(&req), &mut auth, body).await?,
    ))
}

#[login_required]
async fn reauth(
    state: Data<AppState>,
    req: HttpRequest,
    mut auth: AuthSession,
    ApiJson(body): ApiJson<ReauthBody>,
) -> Result<HttpResponse, ApiError> {
    Ok(json(
        api::reauth(&state, &requester(&req), &mut auth, body).await?,
    ))
}

#[login_required]
async fn reauth_passkey(
    state: Data<AppState>,
    req: HttpRequest,
    mut auth: AuthSession,
    ApiJson(body): ApiJson<PasskeyBody>,
) -> Result<HttpResponse, ApiError> {
    Ok(json(
        api::reauth_passkey(&state, &requester(&req), &mut auth, body).await?,
    ))
}

#[has_role("ADMIN")]
async fn impersonate(
    state: Data<AppState>,
    mut auth: AuthSession,
    username: Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(json(
        api::impersonate(&state, &mut auth, username.into_inner()).await?,
    ))
}

#[login_required]
async fn stop_impersonation(
    state: Data<AppState>,
    mut auth: AuthSession,
) -> Result<HttpResponse, ApiError> {
    Ok(json(api::stop_impersonation(&state, &mut auth).await?))
}

#[login_required]
async fn vault(state: Data<AppState>, user: CurrentUser) -> Result<HttpResponse, ApiError> {
    Ok(json(api::vault(&state, &user)?))
}

#[login_required]
async fn change_password(
    state: Data<AppState>,
    req: HttpRequest,
    mut auth: AuthSession,
    ApiJson(body): ApiJson<PasswordBody>,
) -> Result<HttpResponse, ApiError> {
    Ok(
        match api::change_password(&state, &requester(&req), &mut auth, body).await? {
            Some(token) => json(token),
            None => no_content(),
        },
    )
}

#[login_required]
async fn delete_other_sessions(
    state: Data<AppState>,
    mut auth: AuthSession,
) -> Result<HttpResponse, ApiError> {
    api::delete_other_sessions(&state, &mut auth).await?;
    Ok(no_content())
}

/// No guard, so that with the store down the answer (503) still clears the cookie.
async fn logout(mut auth: AuthSession) -> Result<HttpResponse, ApiError> {
    api::logout(&mut auth).await?;
    Ok(no_content())
}

#[login_required]
async fn me(user: CurrentUser) -> HttpResponse {
    json(api::me(&user))
}

#[device_bound]
async fn bound_only(user: CurrentUser) -> HttpResponse {
    json(api::bound_only(&user))
}

#[has_role("ADMIN")]
async fn admin(user: CurrentUser) -> HttpResponse {
    json(api::admin(&user))
}

#[login_required]
async fn list_sessions(auth: AuthSession) -> Result<HttpResponse, ApiError> {
    Ok(json(api::list_sessions(&auth).await?))
}

#[login_required]
async fn delete_session(mut auth: AuthSession, id: Path<String>) -> Result<HttpResponse, ApiError> {
    api::delete_session(&mut auth, id.into_inner()).await?;
    Ok(no_content())
}

#[login_required]
async fn delete_all_sessions(
    state: Data<AppState>,
    req: HttpRequest,
    mut auth: AuthSession,
) -> Result<HttpResponse, ApiError> {
    api::delete_all_sessions(&state, &requester(&req), &mut auth).await?;
    Ok(no_content())
}

#[has_role("ADMIN")]
async fn set_roles(
    state: Data<AppState>,
    admin: CurrentUser,
    username: Path<String>,
    ApiJson(body): ApiJson<RolesBody>,
) -> Result<HttpResponse, ApiError> {
    api::set_roles(&state, &admin, username.into_inner(), body).await?;
    Ok(no_content())
}

#[has_role("ADMIN")]
async fn revoke_user_sessions(
    state: Data<AppState>,
    admin: CurrentUser,
    username: Path<String>,
) -> Result<HttpResponse, ApiError> {
    api::revoke_user_sessions(&state, &admin, username.into_inner()).await?;
    Ok(no_content())
}

#[login_required]
async fn history(auth: AuthSession) -> Result<HttpResponse, ApiError> {
    Ok(json(api::history(&auth).await?))
}

#[has_role("ADMIN")]
async fn user_history(
    state: Data<AppState>,
    username: Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(json(
        api::user_history(&state, username.into_inner()).await?,
    ))
}

async fn not_found() -> HttpResponse {
    ApiError::not_found("no such route").error_response()
}

async fn method_not_allowed() -> HttpResponse {
    ApiError::method_not_allowed().error_response()
}

/// A resource whose other methods answer 405 in JSON.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

/// The routes, with the session middleware (outermost: its CSRF check runs before routing, and
/// its caching headers go on every answer, a CSRF refusal included), the body limits
/// (`body_limits`, with `body_timeout`) and request logging.
pub fn app(
    state: Data<AppState>,
    sessions: SessionMiddleware,
    body_timeout: Duration,
) -> App<
    impl actix_web::dev::ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(state)
        .service(resource("/livez").route(web::get().to(livez)))
        .service(resource("/health").route(web::get().to(health)))
        .service(resource("/metrics").route(web::get().to(metrics)))
        .service(resource("/register").route(web::post().to(register)))
        .service(resource("/login").route(web::post().to(login)))
        .service(resource("/logout").route(web::post().to(logout)))
        .service(resource("/reauth").route(web::post().to(reauth)))
        .service(resource("/reauth/passkey").route(web::post().to(reauth_passkey)))
        .service(resource("/vault").route(web::get().to(vault)))
        .service(resource("/bound-only").route(web::get().to(bound_only)))
        .service(resource("/admin/impersonate/{username}").route(web::post().to(impersonate)))
        .service(resource("/impersonation/stop").route(web::post().to(stop_impersonation)))
        .service(resource("/password").route(web::put().to(change_password)))
        .service(resource("/me").route(web::get().to(me)))
        .service(resource("/admin").route(web::get().to(admin)))
        .service(
            resource("/sessions")
                .route(web::get().to(list_sessions))
                .route(web::delete().to(delete_all_sessions)),
        )
        .service(resource("/sessions/others").route(web::delete().to(delete_other_sessions)))
        .service(resource("/sessions/{id}").route(web::delete().to(delete_session)))
        .service(resource("/history").route(web::get().to(history)))
        .service(resource("/admin/users/{username}/history").route(web::get().to(user_history)))
        .service(resource("/admin/users/{username}/roles").route(web::put().to(set_roles)))
        .service(
            resource("/admin/users/{username}/sessions")
                .route(web::delete().to(revoke_user_sessions)),
        )
        .default_service(web::to(not_found))
        .wrap_fn(move |req, srv| body_limits(req, srv, body_timeout))
        .wrap(sessions)
        .wrap_fn(|req, srv| {
            use actix_web::dev::Service as _;
            let span = tracing::info_span!(
                "request",
                method = %log_safe(req.method().as_str()),
                uri = %log_safe(req.uri().path_and_query().map_or("/", |p| p.as_str())),
                version = ?req.version(),
            );
            let started = std::time::Instant::now();
            let fut = srv.call(req);
            async move {
                let res = fut.await;
                if let Ok(res) = &res {
                    tracing::info!(
                        latency = ?started.elapsed(),
                        status = res.status().as_u16(),
                        "finished processing request"
                    );
                }
                res
            }
            .instrument(span)
        })
}

/// Serves the app on `listener` until `shutdown` completes, then stops accepting and finishes
/// the requests in flight. A connection that has not sent a complete request head
/// `timeouts.head` after it was accepted, or after the previous answer on it, is closed; a
/// request whose body has not arrived `timeouts.body` after its head is answered 408
/// (`body_limits`).
///
/// # Errors
/// When the server cannot start on the listener.
pub async fn serve(
    listener: std::net::TcpListener,
    state: AppState,
    cookie: CookieConfig,
    csrf: CsrfPolicy,
    timeouts: ReadTimeouts,
    shutdown: impl Future<Output = ()> + 'static,
) -> std::io::Result<()> {
    let store: std::sync::Arc<dyn SessionStore> = state.store.clone();
    // The contract's API and mobile clients: the token in `Authorization: Bearer` too.
    let mut sessions = SessionMiddleware::new(store)
        .with_cookie(cookie)
        .with_bearer(BearerConfig::default())
        .with_csrf(csrf);
    if let Some(dbsc) = state.dbsc.clone() {
        // The registration and refresh endpoints are the middleware's own.
        sessions = sessions.with_dbsc(dbsc);
    }
    let state = Data::new(state);
    let server = HttpServer::new(move || app(state.clone(), sessions.clone(), timeouts.body))
        // The head only: actix-web has no deadline for the body (that is `body_limits`'s).
        .client_request_timeout(timeouts.head)
        .keep_alive(actix_web::http::KeepAlive::Timeout(timeouts.head))
        .disable_signals()
        .shutdown_timeout(10)
        .listen(listener)?
        .run();
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        shutdown.await;
        handle.stop(true).await;
    });
    server.await
}
