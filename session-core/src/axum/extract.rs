//! The axum side of the core's extractors and rejections: `FromRequestParts` for
//! [`AuthSession`], [`CurrentUser`] and [`Guard`], and `IntoResponse` for [`Rejection`] and
//! [`Error`].

use axum::extract::{FromRef, FromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{header, HeaderValue};

use crate::error::Error;
use crate::web::{AuthSession, CurrentUser, Guard, Rejection, RequestSession, Requirement};
use crate::web::{Authenticated, UserLoader};

/// Marks a response made from a [`Rejection`], so that the [`SessionLayer`](super::SessionLayer)
/// can hand it to the app's rejection handler, whichever path produced it.
#[derive(Clone)]
pub(crate) struct Rejected(pub(crate) Rejection);

/// The context the layer put in the request, or the 500 `MissingLayer` refusal.
pub(crate) fn context(parts: &Parts) -> Result<RequestSession, Rejection> {
    parts
        .extensions
        .get::<RequestSession>()
        .cloned()
        .ok_or_else(|| {
            Rejection::missing_layer(
                "a session extractor or guard ran without session_core::axum::SessionLayer: add \
                 `.layer(SessionLayer::new(store))` to the router (after its routes, so that it \
                 wraps them)",
            )
        })
}

impl<S: Send + Sync> FromRequestParts<S> for AuthSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        let ctx = context(parts).map_err(IntoResponse::into_response)?;
        Ok(AuthSession::from_context(ctx).await)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        let ctx = context(parts).map_err(IntoResponse::into_response)?;
        CurrentUser::from_context(ctx)
            .await
            .map_err(IntoResponse::into_response)
    }
}

/// The loader comes from the router's state: a handler asking for `Authenticated<L>` is a
/// handler of a router only if its state provides an `L` (`FromRef`), checked at compile time.
impl<S, L> FromRequestParts<S> for Authenticated<L>
where
    S: Send + Sync,
    L: UserLoader + FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let ctx = context(parts).map_err(IntoResponse::into_response)?;
        let loader = L::from_ref(state);
        Authenticated::load(ctx, &loader)
            .await
            .map_err(IntoResponse::into_response)
    }
}

impl<S: Send + Sync, R: Requirement> FromRequestParts<S> for Guard<R> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        let ctx = context(parts).map_err(IntoResponse::into_response)?;
        Guard::from_context(&ctx)
            .await
            .map_err(IntoResponse::into_response)
    }
}

/// The default JSON answer (see [`Rejection`]); the [`SessionLayer`](super::SessionLayer)
/// replaces it with the app's own when one is set.
impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        crate::web::count_rejection(&self);
        let mut res = (self.status(), self.json_body()).into_response();
        let headers = res.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(secs) = self.retry_after_secs() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res.extensions_mut().insert(Rejected(self));
        res
    }
}

/// Lets handlers return `Result<_, session_core::Error>`: the answer of the [`Rejection`] the
/// error maps to (the one mapping, [`Rejection::from`]).
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        Rejection::from(self).into_response()
    }
}
