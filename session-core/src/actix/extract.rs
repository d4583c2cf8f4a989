//! The actix-web side of the core's extractors and rejections: `FromRequest` for
//! [`AuthSession`], [`CurrentUser`] and [`Guard`], and `ResponseError` for [`Rejection`] and
//! [`Error`].

use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use actix_web::dev::Payload;
use actix_web::http::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};

use crate::error::Error;
use crate::web::{AuthSession, CurrentUser, Guard, Rejection, RequestSession, Requirement};
use crate::web::{Authenticated, UserLoader};

type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// The context the middleware put in the request, or the 500 `MissingLayer` refusal.
fn context(req: &HttpRequest) -> Result<RequestSession, Rejection> {
    req.extensions()
        .get::<RequestSession>()
        .cloned()
        .ok_or_else(|| {
            Rejection::missing_layer(
                "a session extractor or guard ran without session_core::actix::SessionMiddleware: \
                 add `.wrap(SessionMiddleware::new(store))` to the App",
            )
        })
}

impl FromRequest for AuthSession {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let ctx = context(req);
        Box::pin(async move { Ok(AuthSession::from_context(ctx?).await) })
    }
}

impl FromRequest for CurrentUser {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let ctx = context(req);
        Box::pin(async move { Ok(CurrentUser::from_context(ctx?).await?) })
    }
}

/// The loader comes from the app's data (`App::app_data(web::Data::new(loader))`), looked up
/// at run time as actix-web does for every `Data`: without it, 500 and an error log.
impl<L: UserLoader> FromRequest for Authenticated<L> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let ctx = context(req);
        let loader = req.app_data::<actix_web::web::Data<L>>().cloned();
        Box::pin(async move {
            let ctx = ctx?;
            let Some(loader) = loader else {
                tracing::error!(
                    loader = std::any::type_name::<L>(),
                    "Authenticated<L> without the loader in the app's data: add \
                     App::app_data(web::Data::new(loader))"
                );
                return Err(Rejection::Internal.into());
            };
            Ok(Authenticated::load(ctx, loader.get_ref()).await?)
        })
    }
}

/// The guard of an actix handler. actix-web polls a handler's extractors together, in order;
/// the [`SessionMiddleware`](super::SessionMiddleware) has loaded the session before they run,
/// so the guard decides at its first poll, before a body extractor (`Json`, `Bytes`, ...) of
/// the same handler reads or even checks the body, and a refusal drops them unread.
impl<R: Requirement> FromRequest for Guard<R> {
    type Error = actix_web::Error;
    type Future = GuardFuture<R>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let ctx = match context(req) {
            Ok(ctx) => ctx,
            Err(missing) => return GuardFuture::Ready(ready(Err(missing.into()))),
        };
        if let Some(now) = Guard::<R>::now(&ctx) {
            return GuardFuture::Ready(ready(now.map_err(Into::into)));
        }
        GuardFuture::Check(Box::pin(async move {
            Guard::<R>::from_context(&ctx).await.map_err(Into::into)
        }))
    }
}

/// The future of a [`Guard`] extraction: at once when the session is already known (always,
/// under the middleware; a refusal goes through the audit log on the second path).
#[doc(hidden)]
pub enum GuardFuture<R> {
    /// Decided without a store call.
    Ready(Ready<Result<Guard<R>, actix_web::Error>>),
    /// Loading the session.
    Check(LocalBoxFuture<Result<Guard<R>, actix_web::Error>>),
}

impl<R> Future for GuardFuture<R> {
    type Output = Result<Guard<R>, actix_web::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            GuardFuture::Ready(r) => Pin::new(r).poll(cx),
            GuardFuture::Check(f) => f.as_mut().poll(cx),
        }
    }
}

/// The default JSON answer (see [`Rejection`]); the
/// [`SessionMiddleware`](super::SessionMiddleware) replaces it with the app's own when one is
/// set.
impl ResponseError for Rejection {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status().as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        crate::web::count_rejection(self);
        let mut res = HttpResponse::build(self.status_code());
        res.insert_header((CONTENT_TYPE, HeaderValue::from_static("application/json")));
        if let Some(secs) = self.retry_after_secs() {
            res.insert_header((RETRY_AFTER, HeaderValue::from(secs)));
        }
        res.body(self.json_body())
    }
}

/// Lets handlers return `Result<_, session_core::Error>`: the answer of the [`Rejection`] the
/// error maps to (the one mapping, [`Rejection::from`]).
impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        ResponseError::status_code(&Rejection::from(self))
    }

    fn error_response(&self) -> HttpResponse {
        Rejection::from(self).error_response()
    }
}
