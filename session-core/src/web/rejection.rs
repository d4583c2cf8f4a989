//! [`Rejection`]: why a request was refused, as a framework-neutral value (status, code,
//! message, JSON body), and the one mapping of [`Error`] to HTTP that every path uses.

use std::fmt;

use http::StatusCode;

use crate::ended::EndReason;
use crate::error::Error;

/// Why a request was refused: by a guard or an extractor before the handler ran, by the CSRF
/// check, or by a handler that returned an [`Error`] (which converts into a `Rejection`, see
/// [`Rejection::from`]).
///
/// By default it answers with a JSON body `{"error": CODE, "message": TEXT}` (and, for a
/// session that ended, `"reason"`: [`EndReason`]):
///
/// | variant | status | `error` |
/// |---|---|---|
/// | [`Rejection::Unauthenticated`] | 401 | `unauthenticated` |
/// | [`Rejection::Forbidden`] | 403 | `forbidden` |
/// | [`Rejection::ReauthenticationRequired`] | 401 | `reauthentication_required` |
/// | [`Rejection::DeviceBindingRequired`] | 403 | `device_binding_required` |
/// | [`Rejection::CrossSite`] | 403 | `csrf` |
/// | [`Rejection::BadRequest`] | 400 | `bad_request` |
/// | [`Rejection::Conflict`] | 409 | `conflict` |
/// | [`Rejection::StoreUnavailable`] | 503 | `store_unavailable` (with `Retry-After: 1`) |
/// | [`Rejection::MissingLayer`], [`Rejection::Internal`] | 500 | `internal` |
///
/// Swap in your own answer with the adapter's rejection handler
/// (`SessionLayer::with_rejection` for axum, `SessionMiddleware::with_rejection` for actix-web),
/// for example a redirect to a login page. The handler sees every rejection, whichever path
/// produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// No session, or one that has ended (401).
    Unauthenticated {
        /// Why the request's session ended, when it names one that did and the store kept the
        /// reason ([`SessionStore::end_reason`](crate::SessionStore::end_reason)); `None`
        /// without a session cookie, for a made-up token, or a session that idled out.
        reason: Option<EndReason>,
    },
    /// Logged in, but without a role or permission the handler requires (403).
    Forbidden {
        /// What was required, for example `role ADMIN`.
        requirement: String,
    },
    /// Logged in, but the password was not entered recently enough for this request (a
    /// freshness guard: `#[fresh_login(max_age = ..)]`,
    /// [`Require::fresh`](crate::web::Require::fresh)) (401). The client should ask the user
    /// for the password again (re-authenticate), not log in anew.
    ReauthenticationRequired {
        /// How recent the authentication must be.
        max_age: std::time::Duration,
        /// The methods one of which the proof must be by (`["passkey"]`); empty: any. The
        /// default body lists them as `"methods"`.
        methods: Vec<String>,
    },
    /// Logged in, but the route requires a device-bound session (`#[device_bound]`,
    /// [`Require::device_bound`](crate::web::Require::device_bound)) and this one is not (a
    /// browser without DBSC, or one that has not registered yet) (403 `device_binding_required`).
    DeviceBindingRequired,
    /// A state-changing request a browser sent on behalf of another site (403 `csrf`).
    CrossSite {
        /// Why the request counts as cross-site.
        reason: &'static str,
    },
    /// The client's input was not acceptable (400); the message says what to change.
    BadRequest(String),
    /// Concurrent requests kept changing the same thing (an atomic update of session data
    /// gave up, [`Error::Contended`], or found its expectation broken, [`Error::Conflict`]);
    /// retrying the request may succeed (409).
    Conflict(String),
    /// The session store could not be reached; access is denied (503).
    StoreUnavailable,
    /// The handler uses a session extractor but the app has no session layer or middleware:
    /// a programming error (500).
    MissingLayer,
    /// Something failed that should not (logged on the server; 500 with no details sent).
    Internal,
}

impl Rejection {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::Unauthenticated { .. } | Rejection::ReauthenticationRequired { .. } => {
                StatusCode::UNAUTHORIZED
            }
            Rejection::Forbidden { .. }
            | Rejection::DeviceBindingRequired
            | Rejection::CrossSite { .. } => StatusCode::FORBIDDEN,
            Rejection::BadRequest(_) => StatusCode::BAD_REQUEST,
            Rejection::Conflict(_) => StatusCode::CONFLICT,
            Rejection::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Rejection::MissingLayer | Rejection::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable code of the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Unauthenticated { .. } => "unauthenticated",
            Rejection::Forbidden { .. } => "forbidden",
            Rejection::ReauthenticationRequired { .. } => "reauthentication_required",
            Rejection::DeviceBindingRequired => "device_binding_required",
            Rejection::CrossSite { .. } => "csrf",
            Rejection::BadRequest(_) => "bad_request",
            Rejection::Conflict(_) => "conflict",
            Rejection::StoreUnavailable => "store_unavailable",
            Rejection::MissingLayer | Rejection::Internal => "internal",
        }
    }

    /// Seconds a client should wait before retrying (`Retry-After`), when it should.
    pub fn retry_after_secs(&self) -> Option<u64> {
        matches!(self, Rejection::StoreUnavailable).then_some(1)
    }

    /// The default body: `{"error": CODE, "message": TEXT}`, with `"reason"` for a session
    /// that ended.
    pub(crate) fn json_body(&self) -> String {
        let mut body = serde_json::json!({ "error": self.code(), "message": self.to_string() });
        match self {
            Rejection::Unauthenticated {
                reason: Some(reason),
            } => body["reason"] = reason.as_str().into(),
            Rejection::ReauthenticationRequired { methods, .. } if !methods.is_empty() => {
                body["methods"] = methods.clone().into();
            }
            _ => {}
        }
        body.to_string()
    }

    /// 401 without a reason: no session cookie, or nothing known of the session it names.
    pub(crate) const UNAUTHENTICATED: Self = Rejection::Unauthenticated { reason: None };
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Unauthenticated { reason: None } => {
                f.write_str("log in first: no live session")
            }
            Rejection::Unauthenticated {
                reason: Some(reason),
            } => write!(f, "log in again: this session ended ({reason})"),
            Rejection::Forbidden { requirement } => write!(f, "this needs {requirement}"),
            Rejection::ReauthenticationRequired { max_age, methods } if methods.is_empty() => {
                write!(
                    f,
                    "enter your password again: this needs a login within the last {} s",
                    max_age.as_secs()
                )
            }
            Rejection::ReauthenticationRequired { max_age, methods } => write!(
                f,
                "prove who you are again by {}: this needs it within the last {} s",
                methods.join(" or "),
                max_age.as_secs()
            ),
            Rejection::DeviceBindingRequired => f.write_str(
                "this needs a device-bound session: sign in again from a browser that supports \
                 Device Bound Session Credentials",
            ),
            Rejection::CrossSite { reason } => write!(f, "cross-site request refused: {reason}"),
            Rejection::BadRequest(message) | Rejection::Conflict(message) => f.write_str(message),
            Rejection::StoreUnavailable => {
                f.write_str("the session store is unavailable; try again shortly")
            }
            Rejection::MissingLayer => f.write_str(
                "server misconfiguration: add session_core::axum::SessionLayer (axum) or \
                 session_core::actix::SessionMiddleware (actix-web) to the app",
            ),
            Rejection::Internal => f.write_str("internal error"),
        }
    }
}

impl std::error::Error for Rejection {}

impl Rejection {
    /// [`Rejection::MissingLayer`], said loudly: an error log line, and once per process a line
    /// on stderr, which an app without a log subscriber (a quick start) sees too.
    #[cfg_attr(not(any(feature = "axum", feature = "actix")), allow(dead_code))]
    pub(crate) fn missing_layer(what_to_do: &'static str) -> Self {
        static SAID: std::sync::Once = std::sync::Once::new();
        tracing::error!("{what_to_do}");
        SAID.call_once(|| eprintln!("session_core: answering 500: {what_to_do}"));
        Rejection::MissingLayer
    }
}

/// The one mapping of [`Error`] to HTTP: an unavailable store is 503 `store_unavailable`, a
/// missing or unreadable session 401 `unauthenticated`, bad input 400 `bad_request`, anything
/// else 500 `internal` (logged, with no details sent to the client).
impl From<&Error> for Rejection {
    fn from(error: &Error) -> Self {
        match error {
            Error::Unavailable { .. } => {
                tracing::warn!(error = %error, "session store unavailable; request denied");
                Rejection::StoreUnavailable
            }
            Error::NotFound | Error::Corrupt(_) | Error::LoginSuperseded => {
                Rejection::UNAUTHENTICATED
            }
            Error::InvalidInput(message) => Rejection::BadRequest(message.clone()),
            Error::Forbidden(requirement) => Rejection::Forbidden {
                requirement: requirement.clone(),
            },
            Error::Contended { .. } | Error::Conflict { .. } => {
                Rejection::Conflict(error.to_string())
            }
            other => {
                tracing::error!(error = %other, "session operation failed");
                Rejection::Internal
            }
        }
    }
}

/// As `From<&Error>`.
impl From<Error> for Rejection {
    fn from(error: Error) -> Self {
        Rejection::from(&error)
    }
}

/// Counts `rejection` once in `session_rejections_total`, by its [`code`](Rejection::code)
/// (feature `metrics`; nothing without it). The adapters call it where a rejection becomes an
/// HTTP response (axum's `IntoResponse`, actix-web's `ResponseError::error_response`), the one
/// point every refusal passes: guards, extractors, `Require`, the CSRF layers and handlers'
/// errors. An app's rejection handler runs under [`in_rejection_handler`], so a default answer
/// it builds for a rejection already counted is not counted again.
#[inline]
pub(crate) fn count(rejection: &Rejection) {
    #[cfg(feature = "metrics")]
    if !counting::IN_HANDLER.with(std::cell::Cell::get) {
        crate::metrics::record_rejection(rejection.code());
    }
    #[cfg(not(feature = "metrics"))]
    let _ = rejection;
}

/// Runs an app's rejection handler (synchronous) with [`count`] off on this thread.
#[inline]
pub(crate) fn in_rejection_handler<T>(handler: impl FnOnce() -> T) -> T {
    #[cfg(feature = "metrics")]
    let _off = counting::Off::new();
    handler()
}

#[cfg(feature = "metrics")]
mod counting {
    use std::cell::Cell;

    thread_local! {
        /// Set while an app's rejection handler runs on this thread.
        pub(super) static IN_HANDLER: Cell<bool> = const { Cell::new(false) };
    }

    /// Sets [`IN_HANDLER`] until dropped (also when the handler panics).
    pub(super) struct Off(bool);

    impl Off {
        pub(super) fn new() -> Self {
            Self(IN_HANDLER.with(|c| c.replace(true)))
        }
    }

    impl Drop for Off {
        fn drop(&mut self) {
            IN_HANDLER.with(|c| c.set(self.0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::UnavailableKind;

    #[test]
    fn every_error_maps_to_its_status_and_code() {
        let cases: Vec<(Error, u16, &str)> = vec![
            (
                Error::unavailable(UnavailableKind::TimedOut, "x"),
                503,
                "store_unavailable",
            ),
            (Error::NotFound, 401, "unauthenticated"),
            (Error::Corrupt("x".into()), 401, "unauthenticated"),
            (Error::LoginSuperseded, 401, "unauthenticated"),
            (Error::InvalidInput("bad".into()), 400, "bad_request"),
            (Error::Forbidden("x".into()), 403, "forbidden"),
            (
                Error::Contended {
                    key: "cart".into(),
                    attempts: 64,
                },
                409,
                "conflict",
            ),
            (
                Error::Conflict {
                    data: crate::record::SessionData::new(),
                },
                409,
                "conflict",
            ),
            (Error::Internal("x".into()), 500, "internal"),
        ];
        for (error, status, code) in cases {
            let r = Rejection::from(error);
            assert_eq!((r.status().as_u16(), r.code()), (status, code), "{r:?}");
        }
    }

    #[test]
    fn a_rejection_answers_with_its_code_and_retry_hint() {
        let r = Rejection::ReauthenticationRequired {
            max_age: std::time::Duration::from_secs(300),
            methods: vec!["passkey".into()],
        };
        let body: serde_json::Value = serde_json::from_str(&r.json_body()).unwrap();
        assert_eq!(body["error"], "reauthentication_required");
        assert_eq!(body["methods"], serde_json::json!(["passkey"]));
        assert_eq!(Rejection::StoreUnavailable.retry_after_secs(), Some(1));
        assert_eq!(Rejection::UNAUTHENTICATED.retry_after_secs(), None);
    }

    #[test]
    fn an_ended_session_says_why_and_no_reason_says_nothing() {
        let revoked = Rejection::Unauthenticated {
            reason: Some(EndReason::Revoked),
        };
        let body: serde_json::Value = serde_json::from_str(&revoked.json_body()).unwrap();
        assert_eq!(
            (body["error"].as_str(), body["reason"].as_str()),
            (Some("unauthenticated"), Some("revoked"))
        );
        assert_eq!(revoked.status(), StatusCode::UNAUTHORIZED);
        let body: serde_json::Value =
            serde_json::from_str(&Rejection::UNAUTHENTICATED.json_body()).unwrap();
        assert!(body.get("reason").is_none(), "{body}");
    }
}
