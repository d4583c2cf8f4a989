//! [`Rejection`]: why a guard or extractor refused a request, and how it becomes a response.

use std::fmt;
use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::StatusCode;

/// Why a request was refused before its handler ran.
///
/// By default it answers with a JSON body `{"error": CODE, "message": TEXT}`:
///
/// | variant | status | `error` |
/// |---|---|---|
/// | [`Rejection::Unauthenticated`] | 401 | `unauthenticated` |
/// | [`Rejection::Forbidden`] | 403 | `forbidden` |
/// | [`Rejection::ReauthenticationRequired`] | 401 | `reauthentication_required` |
/// | [`Rejection::StoreUnavailable`] | 503 | `store_unavailable` |
/// | [`Rejection::MissingLayer`] | 500 | `internal` |
///
/// Swap in your own answer with
/// [`SessionLayer::with_rejection`](crate::axum::SessionLayer::with_rejection), for example a
/// redirect to a login page.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// No session, or one that has ended (401).
    Unauthenticated,
    /// Logged in, but without a role or permission the handler requires (403).
    Forbidden {
        /// What was required, for example `role ADMIN`.
        requirement: String,
    },
    /// Logged in, but the password was not entered recently enough for this request (a
    /// freshness guard: `#[fresh_login(max_age = ..)]`,
    /// [`Require::fresh`](crate::axum::Require::fresh)) (401). The client should ask the user
    /// for the password again (re-authenticate), not log in anew.
    ReauthenticationRequired {
        /// How recent the authentication must be.
        max_age: std::time::Duration,
    },
    /// The session store could not be reached; access is denied (503).
    StoreUnavailable,
    /// The handler uses a session extractor but the router has no
    /// [`SessionLayer`](crate::axum::SessionLayer): a programming error (500).
    MissingLayer,
}

impl Rejection {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::Unauthenticated => StatusCode::UNAUTHORIZED,
            Rejection::Forbidden { .. } => StatusCode::FORBIDDEN,
            Rejection::ReauthenticationRequired { .. } => StatusCode::UNAUTHORIZED,
            Rejection::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Rejection::MissingLayer => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable code of the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Unauthenticated => "unauthenticated",
            Rejection::Forbidden { .. } => "forbidden",
            Rejection::ReauthenticationRequired { .. } => "reauthentication_required",
            Rejection::StoreUnavailable => "store_unavailable",
            Rejection::MissingLayer => "internal",
        }
    }

    /// The default JSON response (what [`IntoResponse`] gives).
    pub fn json_response(&self) -> Response {
        let body = serde_json::json!({ "error": self.code(), "message": self.to_string() });
        let mut res = (self.status(), axum::Json(body)).into_response();
        if matches!(self, Rejection::StoreUnavailable) {
            res.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("1"),
            );
        }
        res
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Unauthenticated => f.write_str("log in first: no live session"),
            Rejection::Forbidden { requirement } => write!(f, "this needs {requirement}"),
            Rejection::ReauthenticationRequired { max_age } => write!(
                f,
                "enter your password again: this needs a login within the last {} s",
                max_age.as_secs()
            ),
            Rejection::StoreUnavailable => {
                f.write_str("the session store is unavailable; try again shortly")
            }
            Rejection::MissingLayer => f.write_str(
                "server misconfiguration: add session_core::axum::SessionLayer to the router",
            ),
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        self.json_response()
    }
}

/// Turns a [`Rejection`] into the response sent to the client.
pub(crate) type RejectionHandler = Arc<dyn Fn(Rejection, &Parts) -> Response + Send + Sync>;

pub(crate) fn default_handler() -> RejectionHandler {
    Arc::new(|rejection, _| rejection.json_response())
}

/// Lets handlers return `Result<_, session_core::Error>`: an unavailable store is 503
/// `store_unavailable`, a missing or unreadable session 401 `unauthenticated`, bad input 400
/// `bad_request`, session data changed by other requests on every try 409 `conflict`, anything
/// else 500 `internal` (logged, with no details sent to the client).
impl IntoResponse for crate::Error {
    fn into_response(self) -> Response {
        let (status, code, message) = match &self {
            crate::Error::Unavailable { .. } => {
                tracing::warn!(error = %self, "session store unavailable");
                return Rejection::StoreUnavailable.json_response();
            }
            crate::Error::NotFound | crate::Error::Corrupt(_) => {
                return Rejection::Unauthenticated.json_response();
            }
            crate::Error::InvalidInput(m) => (StatusCode::BAD_REQUEST, "bad_request", m.clone()),
            crate::Error::Contended { .. } => (StatusCode::CONFLICT, "conflict", self.to_string()),
            _ => {
                tracing::error!(error = %self, "session operation failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error".to_owned(),
                )
            }
        };
        let body = serde_json::json!({ "error": code, "message": message });
        (status, axum::Json(body)).into_response()
    }
}
