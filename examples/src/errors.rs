//! The demo's error answers: every one is `{"error": CODE, "message": TEXT}` with
//! `Content-Type: application/json`, whatever produced it. [`ApiError`] is the same value for
//! both demo binaries; this module also holds its axum side (the actix side is in
//! `crate::actix_app`).

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use session_core::web::Rejection;
use session_core::EndReason;

/// An error answer of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Why the request's session ended (a 401 `unauthenticated` for a session that did).
    reason: Option<EndReason>,
    /// The methods a re-authentication must be by (a 401 `reauthentication_required`).
    methods: Vec<String>,
    retry_after: Option<u64>,
    /// The request body was not read to its end: the connection cannot be reused.
    close: bool,
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine-readable code of the body.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The body: `{"error": CODE, "message": TEXT}`, with `"reason"` for a session that ended.
    pub fn body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({ "error": self.code, "message": self.message });
        if let Some(reason) = self.reason {
            body["reason"] = reason.as_str().into();
        }
        if !self.methods.is_empty() {
            body["methods"] = self.methods.clone().into();
        }
        body
    }

    /// Seconds to put in `Retry-After`, if any.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    /// True when the connection must be closed after this answer (the body was not read).
    pub fn close(&self) -> bool {
        self.close
    }

    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            reason: None,
            methods: Vec::new(),
            retry_after: None,
            close: false,
        }
    }

    /// The message for the client.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 401 `invalid_credentials`: the same answer for an unknown user and a wrong password.
    pub fn invalid_credentials() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "unknown username or wrong password",
        )
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 405 `method_not_allowed`.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed on this route",
        )
    }

    /// 409 `conflict`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 429 `too_many_attempts` with `Retry-After`.
    pub fn too_many_attempts(retry_after_secs: u64) -> Self {
        Self {
            retry_after: Some(retry_after_secs),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                format!("too many failed logins; try again in {retry_after_secs} s"),
            )
        }
    }

    /// 503 `busy` with `Retry-After`: too many password checks are waiting already.
    pub fn busy(retry_after_secs: u64) -> Self {
        Self {
            retry_after: Some(retry_after_secs),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                format!("too many logins in progress; try again in {retry_after_secs} s"),
            )
        }
    }

    /// 503 `store_unavailable`.
    pub fn store_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the session store is unavailable; try again shortly",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.close {
            res.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        res
    }
}

/// A guard's or [`Require::check`](session_core::web::Require::check)'s refusal, with its
/// status and code (401 `reauthentication_required` for a session that is not fresh).
impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        let base = Self::new(r.status(), r.code(), r.to_string());
        let retry_after = r.retry_after_secs();
        match r {
            Rejection::Unauthenticated { reason } => Self {
                reason,
                retry_after,
                ..base
            },
            Rejection::ReauthenticationRequired { methods, .. } => Self {
                methods,
                retry_after,
                ..base
            },
            _ => Self {
                retry_after,
                ..base
            },
        }
    }
}

/// Through the library's one mapping of errors to HTTP ([`Rejection::from`]).
impl From<session_core::Error> for ApiError {
    fn from(e: session_core::Error) -> Self {
        match e {
            // A login whose password check may have seen the old password: to the client it
            // is a wrong password (which it now is).
            session_core::Error::LoginSuperseded => ApiError::invalid_credentials(),
            e => Rejection::from(e).into(),
        }
    }
}

/// Parses a request body that must be a JSON **object** (serde would otherwise also accept
/// `["name", "password"]` for a struct): 400 `bad_request` for a missing or other content
/// type, malformed JSON, a non-object or wrong fields. The size limit is the caller's.
///
/// # Errors
/// As said.
pub fn json_object<T: DeserializeOwned>(
    content_type: Option<&[u8]>,
    body: &[u8],
) -> Result<T, ApiError> {
    let is_json = content_type
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| mime.trim().to_ascii_lowercase())
        .is_some_and(|mime| {
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        });
    if !is_json {
        return Err(ApiError::bad_request(
            "Expected request with `Content-Type: application/json`",
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    serde_json::from_value(value).map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))
}

/// `axum::Json` for a JSON **object** body, with our JSON errors: 413 `payload_too_large` for
/// a body over the limit, 400 `bad_request` for anything else (malformed JSON, an array or
/// other non-object, wrong fields, missing content type) instead of axum's 415/422 plain-text
/// answers. (serde would otherwise also accept `["name", "password"]` for a struct.)
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let value = match axum::Json::<serde_json::Value>::from_request(req, state).await {
            Ok(axum::Json(v)) => v,
            Err(rejection) => return Err(json_rejection(&rejection)),
        };
        if !value.is_object() {
            return Err(ApiError::bad_request("the body must be a JSON object"));
        }
        serde_json::from_value(value)
            .map(Self)
            .map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))
    }
}

fn json_rejection(rejection: &JsonRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return payload_too_large();
    }
    ApiError::bad_request(rejection.body_text())
}

/// 413 `payload_too_large`, saying `Connection: close` (the rest of the body is not read).
pub fn payload_too_large() -> ApiError {
    ApiError {
        // The rest of the body is not read, so the connection is closed after this answer;
        // saying so lets keep-alive clients open a new one instead of failing their next request.
        close: true,
        ..ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request bodies are limited to {} bytes", crate::BODY_LIMIT),
        )
    }
}

/// 408 `request_timeout`, saying `Connection: close`: the request body did not arrive within
/// `HTTP_BODY_TIMEOUT_SECS` of its head (the contract has no code for it: version 2's slow
/// clients are only cut off; this one tells them why).
pub fn request_timeout() -> ApiError {
    ApiError {
        // The rest of the body is never read: this connection cannot carry another request.
        close: true,
        ..ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request body did not arrive in time",
        )
    }
}

/// The last line of defence: an error answer that is not yet our JSON (axum's 404 and 405, a
/// path rejection, a layer's plain-text error) becomes one, keeping its status.
pub async fn json_errors(res: Response) -> Response {
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    let code = match status {
        StatusCode::UNAUTHORIZED => "unauthenticated",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PAYLOAD_TOO_LARGE => return payload_too_large().into_response(),
        StatusCode::TOO_MANY_REQUESTS => "too_many_attempts",
        StatusCode::SERVICE_UNAVAILABLE => "store_unavailable",
        s if s.is_client_error() => "bad_request",
        _ => "internal",
    };
    let message = match status {
        StatusCode::NOT_FOUND => "no such route".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this route".to_owned(),
        s => s.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let (mut parts, _) = res.into_parts();
    let mut fresh = ApiError::new(status, code, message).into_response();
    // Keep headers such as Allow and Retry-After; the body and its type are replaced.
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    for (name, value) in parts.headers.iter() {
        fresh.headers_mut().entry(name).or_insert(value.clone());
    }
    fresh
}
