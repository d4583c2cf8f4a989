//! The axum handlers of `demo-server`: each extracts its inputs, calls [`crate::api`] (what the
//! route does, shared with `demo-actix`) and writes the answer.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::Value;
use session_core::prelude::*;
use session_core::web::{AuthSession, CurrentUser};

use crate::api::{
    self, Credentials, LoginBody, PasskeyBody, PasswordBody, ReauthBody, Requester, RolesBody,
};
use crate::errors::{ApiError, ApiJson};
use crate::AppState;

/// The request's `User-Agent`, for the session's label (cut to 256 characters by the store).
pub fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// The client's address: the connection's peer as [`crate::serve::serve`] records it (`None`
/// where nothing did, as in a test's `oneshot`). Behind a reverse proxy that is the proxy; an
/// application there takes the address from the header its proxy sets, and trusts only that.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

/// The request's client and `User-Agent`, for the login history.
impl<S: Send + Sync> FromRequestParts<S> for Requester {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ClientAddr(client) = ClientAddr::from_request_parts(parts, state).await?;
        Ok(Self {
            client,
            user_agent: user_agent(&parts.headers),
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>();
        Ok(Self(peer.map(|ConnectInfo(addr)| addr.ip())))
    }
}

/// `GET /livez`: 200 while the process serves requests; asks no store (a liveness probe, and
/// the benchmarks' floor: the same server and layers, no session work).
pub async fn livez() -> Json<Value> {
    Json(api::livez())
}

/// `GET /metrics`: every metric recorded, in the Prometheus text format; 404 when the process
/// has no recorder (apps built in a test's process). In production, serve it on an internal
/// listener only.
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let metrics = state
        .metrics
        .as_ref()
        .ok_or_else(|| ApiError::not_found("no such route"))?;
    Ok((
        [(header::CONTENT_TYPE, crate::setup::METRICS_CONTENT_TYPE)],
        metrics.render(),
    ))
}

/// `GET /health`: 200 when the store answers, 503 otherwise.
pub async fn health(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(api::health(&state).await?))
}

/// `POST /register`.
pub async fn register(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(api::register(&state, client, body).await?),
    ))
}

/// `POST /login`.
pub async fn login(
    State(state): State<AppState>,
    from: Requester,
    mut auth: AuthSession,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(api::login(&state, &from, &mut auth, body).await?))
}

/// `POST /reauth`.
#[login_required]
pub async fn reauth(
    State(state): State<AppState>,
    from: Requester,
    mut auth: AuthSession,
    ApiJson(body): ApiJson<ReauthBody>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(api::reauth(&state, &from, &mut auth, body).await?))
}

/// `POST /reauth/passkey`.
#[login_required]
pub async fn reauth_passkey(
    State(state): State<AppState>,
    from: Requester,
    mut auth: AuthSession,
    ApiJson(body): ApiJson<PasskeyBody>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        api::reauth_passkey(&state, &from, &mut auth, body).await?,
    ))
}

/// `GET /vault`.
#[login_required]
pub async fn vault(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(api::vault(&state, &user)?))
}

/// `GET /bound-only`: a device-bound session only (DBSC).
#[device_bound]
pub async fn bound_only(user: CurrentUser) -> Json<Value> {
    Json(api::bound_only(&user))
}

/// `POST /admin/impersonate/{username}`.
#[has_role("ADMIN")]
pub async fn impersonate(
    State(state): State<AppState>,
    mut auth: AuthSession,
    Path(username): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(api::impersonate(&state, &mut auth, username).await?))
}

/// `POST /impersonation/stop`.
#[login_required]
pub async fn stop_impersonation(
    State(state): State<AppState>,
    mut auth: AuthSession,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(api::stop_impersonation(&state, &mut auth).await?))
}

/// `PUT /password`: 204, or 200 `{"token"}` for a bearer client.
#[login_required]
pub async fn change_password(
    State(state): State<AppState>,
    from: Requester,
    mut auth: AuthSession,
    ApiJson(body): ApiJson<PasswordBody>,
) -> Result<axum::response::Response, ApiError> {
    Ok(
        match api::change_password(&state, &from, &mut auth, body).await? {
            Some(token) => Json(token).into_response(),
            None => StatusCode::NO_CONTENT.into_response(),
        },
    )
}

/// `DELETE /sessions/others`.
#[login_required]
pub async fn delete_other_sessions(
    State(state): State<AppState>,
    mut auth: AuthSession,
) -> Result<StatusCode, ApiError> {
    api::delete_other_sessions(&state, &mut auth).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /logout`: no guard, so that with the store down the answer (503) still clears the
/// cookie; 401 without a live session all the same.
pub async fn logout(mut auth: AuthSession) -> Result<StatusCode, ApiError> {
    api::logout(&mut auth).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /me`.
#[login_required]
pub async fn me(user: CurrentUser) -> Json<Value> {
    Json(api::me(&user))
}

/// `GET /admin`.
#[has_role("ADMIN")]
pub async fn admin(user: CurrentUser) -> Json<Value> {
    Json(api::admin(&user))
}

/// `GET /sessions`.
#[login_required]
pub async fn list_sessions(auth: AuthSession) -> Result<Json<Value>, ApiError> {
    Ok(Json(api::list_sessions(&auth).await?))
}

/// `DELETE /sessions/{id}`.
#[login_required]
pub async fn delete_session(
    mut auth: AuthSession,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    api::delete_session(&mut auth, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /sessions`.
#[login_required]
pub async fn delete_all_sessions(
    State(state): State<AppState>,
    from: Requester,
    mut auth: AuthSession,
) -> Result<StatusCode, ApiError> {
    api::delete_all_sessions(&state, &from, &mut auth).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /admin/users/{username}/roles`.
#[has_role("ADMIN")]
pub async fn set_roles(
    State(state): State<AppState>,
    admin: CurrentUser,
    Path(username): Path<String>,
    ApiJson(body): ApiJson<RolesBody>,
) -> Result<StatusCode, ApiError> {
    api::set_roles(&state, &admin, username, body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /admin/users/{username}/sessions`.
#[has_role("ADMIN")]
pub async fn revoke_user_sessions(
    State(state): State<AppState>,
    admin: CurrentUser,
    Path(username): Path<String>,
) -> Result<StatusCode, ApiError> {
    api::revoke_user_sessions(&state, &admin, username).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /history`.
#[login_required]
pub async fn history(auth: AuthSession) -> Result<Json<Value>, ApiError> {
    Ok(Json(api::history(&auth).await?))
}

/// `GET /admin/users/{username}/history`.
#[has_role("ADMIN")]
pub async fn user_history(
    State(state): State<AppState>,
    Path(username): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(api::user_history(&state, username).await?))
}

/// Any other path.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}
