//! The web app's refusals as HTML: the session layer's [`Rejection`]s ([`html_rejection`], given
//! to `SessionLayer::with_rejection`) and the handlers' errors ([`WebError`]).

use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use session_core::web::Rejection;
use session_core::EndReason;

use crate::errors::ApiError;
use crate::web::html::{escape, Page, Viewer};
use crate::web::next::{login_url, reauth_url};

/// Seconds a browser is asked to wait (`Retry-After`) when the session store is unavailable.
pub const RETRY_AFTER_SECS: u64 = 1;

/// The answer to a guard's or extractor's refusal, for people with browsers:
///
/// | rejection | answer |
/// |---|---|
/// | not logged in (401) | 303 to `/login?next=<this page>` for a `GET`, `/login` otherwise |
/// | the session ended, and the store knows why (401) | the same with `&ended=<reason>` ([`signed_out_url`]), which the login page puts in words |
/// | logged in, no fresh enough password entry (401) | 303 to `/reauth?next=<this page>` (the password again); a 403 page when only another method would do |
/// | logged in without the role (403) | an HTML 403 page |
/// | logged in, the session not bound to this device (403, `#[device_bound]`) | an HTML 403 page saying so |
/// | store unavailable (503) | an HTML 503 page with `Retry-After` |
/// | anything else | an HTML 500 page |
pub fn html_rejection(rejection: Rejection, parts: &Parts) -> Response {
    let target = if parts.method == Method::GET || parts.method == Method::HEAD {
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    } else {
        "/"
    };
    match rejection {
        Rejection::Unauthenticated { reason } => {
            Redirect::to(&signed_out_url(target, reason)).into_response()
        }
        // This demo's one proof after login is the password (`/reauth`).
        Rejection::ReauthenticationRequired { methods, .. }
            if methods.is_empty() || methods.iter().any(|m| m == "password") =>
        {
            WebError::Reauthenticate(target.to_owned()).into_response()
        }
        Rejection::ReauthenticationRequired { methods, .. } => {
            WebError::Forbidden(format!("a recent proof by {}", methods.join(" or ")))
                .into_response()
        }
        Rejection::Forbidden { requirement } => WebError::Forbidden(requirement).into_response(),
        Rejection::DeviceBindingRequired => WebError::Forbidden(
            "a session bound to this device (Device Bound Session Credentials, which this \
             browser did not set up at login)"
                .to_owned(),
        )
        .into_response(),
        // A form posted from another site (the CSRF check): refused, never a 5xx.
        Rejection::CrossSite { .. } => {
            WebError::Forbidden("a form of this site's own pages".to_owned()).into_response()
        }
        Rejection::BadRequest(message) | Rejection::Conflict(message) => {
            WebError::BadRequest(message).into_response()
        }
        Rejection::StoreUnavailable => WebError::Unavailable.into_response(),
        other => {
            tracing::error!(rejection = %other, "request refused");
            WebError::Internal.into_response()
        }
    }
}

/// The login page's URL for a request whose session is gone: [`login_url`], and when the store
/// knows why the session ended, `ended=<reason>` ([`EndReason::as_str`]: a fixed word, never
/// the request's text) for the login page to say so
/// ([`signed_out_message`](crate::web::pages::signed_out_message)).
pub fn signed_out_url(target: &str, reason: Option<EndReason>) -> String {
    let url = login_url(target);
    match reason {
        Some(reason) => {
            let join = if url.contains('?') { '&' } else { '?' };
            format!("{url}{join}ended={}", reason.as_str())
        }
        None => url,
    }
}

/// Why a page could not be served; each variant renders its own HTML answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebError {
    /// The session ended meanwhile: 303 to the login page.
    LoggedOut,
    /// The session's password entry is not recent enough for this page: 303 to the password
    /// confirmation (`/reauth`), which returns to this path (a [`safe_next`] one) after.
    ///
    /// [`safe_next`]: crate::web::next::safe_next
    Reauthenticate(String),
    /// 400: the form could not be read (what was wrong).
    BadRequest(String),
    /// 403: what was required.
    Forbidden(String),
    /// 404.
    NotFound,
    /// 408, closing the connection: the form did not arrive within `HTTP_BODY_TIMEOUT_SECS`.
    TimedOut,
    /// 413, closing the connection: the form is declared larger than the body limit.
    TooLarge,
    /// 503: the session store (or account store) is unavailable; try again.
    Unavailable,
    /// 500: logged; no details go to the browser.
    Internal,
}

impl WebError {
    fn page(status: StatusCode, title: &str, body: String) -> Response {
        Page {
            status,
            title,
            viewer: Viewer::Anonymous,
            flash: None,
            body,
        }
        .into_response()
    }
}

impl WebError {
    /// `res` saying `Connection: close`: the rest of the request body is never read.
    fn closing(mut res: Response) -> Response {
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        res
    }

    /// The web app's answers to [`crate::limits::enforce`]'s refusals.
    pub fn body_refusal(refusal: crate::limits::BodyRefusal) -> Response {
        match refusal {
            crate::limits::BodyRefusal::TooLarge => WebError::TooLarge.into_response(),
            crate::limits::BodyRefusal::TimedOut => WebError::TimedOut.into_response(),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::LoggedOut => Redirect::to("/login").into_response(),
            WebError::Reauthenticate(next) => Redirect::to(&reauth_url(&next)).into_response(),
            WebError::BadRequest(what) => Self::page(
                StatusCode::BAD_REQUEST,
                "Bad request",
                format!("<p class=\"error\">{}</p>", escape(&what)),
            ),
            WebError::Forbidden(requirement) => Self::page(
                StatusCode::FORBIDDEN,
                "Forbidden",
                format!(
                    "<p class=\"error\">You are signed in, but this page needs {}.</p>\
                     <p><a href=\"/account\">Back to your account</a></p>",
                    escape(&requirement)
                ),
            ),
            WebError::NotFound => Self::page(
                StatusCode::NOT_FOUND,
                "Not found",
                "<p>There is no such page.</p><p><a href=\"/\">Home</a></p>".to_owned(),
            ),
            WebError::TimedOut => Self::closing(Self::page(
                StatusCode::REQUEST_TIMEOUT,
                "Request timeout",
                "<p class=\"error\">The form did not arrive in time; please send it again.</p>"
                    .to_owned(),
            )),
            WebError::TooLarge => Self::closing(Self::page(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Too large",
                format!(
                    "<p class=\"error\">Forms are limited to {} bytes.</p>",
                    crate::BODY_LIMIT
                ),
            )),
            WebError::Unavailable => {
                let mut res = Self::page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Temporarily unavailable",
                    "<p class=\"error\">The session store cannot be reached right now, so \
                     nobody's login can be checked. Please try again in a moment.</p>"
                        .to_owned(),
                );
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
                res
            }
            WebError::Internal => Self::page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "<p class=\"error\">The server could not answer this request.</p>".to_owned(),
            ),
        }
    }
}

impl From<session_core::Error> for WebError {
    fn from(e: session_core::Error) -> Self {
        match e {
            session_core::Error::Unavailable { .. } => {
                tracing::warn!(error = %e, "store unavailable");
                WebError::Unavailable
            }
            session_core::Error::NotFound | session_core::Error::Corrupt(_) => WebError::LoggedOut,
            session_core::Error::InvalidInput(m) => WebError::BadRequest(m),
            other => {
                tracing::error!(error = %other, "internal error");
                WebError::Internal
            }
        }
    }
}

/// The JSON API's errors met on shared paths (the password check).
impl From<ApiError> for WebError {
    fn from(e: ApiError) -> Self {
        match e.status() {
            StatusCode::SERVICE_UNAVAILABLE => WebError::Unavailable,
            StatusCode::UNAUTHORIZED => WebError::LoggedOut,
            StatusCode::BAD_REQUEST => WebError::BadRequest(e.message().to_owned()),
            StatusCode::NOT_FOUND => WebError::NotFound,
            _ => WebError::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(method: Method, uri: &str) -> Parts {
        let (parts, ()) = Request::builder()
            .method(method)
            .uri(uri)
            .body(())
            .unwrap()
            .into_parts();
        parts
    }

    fn location(res: &Response) -> &str {
        res.headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    #[test]
    fn unauthenticated_gets_redirect_to_login_with_this_page_as_next() {
        let res = html_rejection(
            Rejection::Unauthenticated { reason: None },
            &parts(Method::GET, "/sessions?x=1"),
        );
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&res), "/login?next=/sessions%3Fx%3D1");
        let post = html_rejection(
            Rejection::Unauthenticated { reason: None },
            &parts(Method::POST, "/sessions/others/end"),
        );
        assert_eq!(location(&post), "/login");
        let evil = html_rejection(
            Rejection::Unauthenticated { reason: None },
            &parts(Method::GET, "http://evil.example//evil.example"),
        );
        assert_eq!(location(&evil), "/login");
    }

    #[test]
    fn an_ended_session_goes_to_the_login_page_with_the_reason() {
        let res = html_rejection(
            Rejection::Unauthenticated {
                reason: Some(EndReason::Revoked),
            },
            &parts(Method::GET, "/sessions?x=1"),
        );
        assert_eq!(
            location(&res),
            "/login?next=/sessions%3Fx%3D1&ended=revoked"
        );
        let post = html_rejection(
            Rejection::Unauthenticated {
                reason: Some(EndReason::PasswordChanged),
            },
            &parts(Method::POST, "/password"),
        );
        assert_eq!(location(&post), "/login?ended=password_changed");
    }

    #[test]
    fn a_stale_session_confirms_its_password_and_comes_back() {
        let stale = |methods: Vec<String>| Rejection::ReauthenticationRequired {
            max_age: std::time::Duration::from_secs(300),
            methods,
        };
        let res = html_rejection(stale(Vec::new()), &parts(Method::GET, "/password"));
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&res), "/reauth?next=/password");
        let post = html_rejection(stale(Vec::new()), &parts(Method::POST, "/password"));
        assert_eq!(location(&post), "/reauth");
        // A passkey cannot be given on this site's password form: refused, not sent round.
        let passkey = html_rejection(
            stale(vec!["passkey".to_owned()]),
            &parts(Method::GET, "/vault"),
        );
        assert_eq!(passkey.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn forbidden_and_unavailable_are_html_pages() {
        let res = html_rejection(
            Rejection::Forbidden {
                requirement: "role ADMIN".into(),
            },
            &parts(Method::GET, "/admin"),
        );
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert!(res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let unbound = html_rejection(
            Rejection::DeviceBindingRequired,
            &parts(Method::GET, "/bound-only"),
        );
        assert_eq!(unbound.status(), StatusCode::FORBIDDEN);
        assert!(unbound.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let res = html_rejection(Rejection::StoreUnavailable, &parts(Method::GET, "/"));
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[header::RETRY_AFTER], "1");
    }
}
