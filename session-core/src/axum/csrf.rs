//! [`CsrfLayer`]: refuses cross-site state-changing requests, the attack cookie sessions invite.
//!
//! A browser attaches the session cookie to requests that another site makes it send. The layer
//! refuses `POST`, `PUT`, `PATCH` and `DELETE` requests that a browser marks as coming from
//! elsewhere:
//! - an `Origin` header naming another origin than the request's `Host` (or `Origin: null`);
//! - `Sec-Fetch-Site: cross-site`.
//!
//! Same-origin requests pass, and so do requests with neither header (non-browser clients such
//! as curl, which carry no ambient cookies). Put the layer outermost, so it runs before routing
//! and a cross-site request to any path is refused.
//!
//! ```
//! use axum::{routing::post, Router};
//! use session_core::axum::CsrfLayer;
//!
//! let app: Router = Router::new()
//!     .route("/transfer", post(|| async { "done" }))
//!     .layer(CsrfLayer::new());
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use axum::response::{IntoResponse, Response};
use http::header::{HOST, ORIGIN};
use http::{HeaderMap, Method, Request, StatusCode, Uri};
use tower::{Layer, Service};

/// The layer; see the module docs.
#[derive(Debug, Clone, Copy, Default)]
pub struct CsrfLayer {
    _private: (),
}

impl CsrfLayer {
    /// The layer with its only policy (see the module docs).
    pub fn new() -> Self {
        Self::default()
    }
}

impl<S> Layer<S> for CsrfLayer {
    type Service = CsrfService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CsrfService { inner }
    }
}

/// The service of [`CsrfLayer`].
#[derive(Debug, Clone)]
pub struct CsrfService<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for CsrfService<S>
where
    S: Service<Request<B>, Response = Response>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if let Some(reason) = cross_site(req.method(), req.headers(), req.uri()) {
            tracing::info!(
                target: "session_audit",
                event = "csrf",
                method = %req.method(),
                path = %req.uri().path(),
                reason,
                "cross-site request refused"
            );
            let body = serde_json::json!({
                "error": "csrf",
                "message": format!("cross-site request refused: {reason}"),
            });
            let res = (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
            return Box::pin(async move { Ok(res) });
        }
        Box::pin(self.inner.call(req))
    }
}

/// Why the request is cross-site, or `None` when it may pass.
fn cross_site(method: &Method, headers: &HeaderMap, uri: &Uri) -> Option<&'static str> {
    if !matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) {
        return None;
    }
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        return Some("Sec-Fetch-Site: cross-site");
    }
    let origin = headers.get(ORIGIN)?;
    let Some(origin) = origin.to_str().ok().and_then(origin_authority) else {
        return Some("Origin is not a usable origin");
    };
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| uri.authority().map(|a| a.to_string()));
    match host {
        Some(host) if same_authority(&origin, &host) => None,
        _ => Some("Origin names another origin than Host"),
    }
}

/// `(scheme, host, port)` of an `Origin` value; `None` for `null` or garbage.
fn origin_authority(origin: &str) -> Option<(String, String, Option<u16>)> {
    let uri: Uri = origin.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let authority = uri.authority()?;
    Some((
        scheme,
        authority.host().to_ascii_lowercase(),
        authority.port_u16(),
    ))
}

fn same_authority((scheme, host, port): &(String, String, Option<u16>), host_header: &str) -> bool {
    let Ok(authority) = host_header.parse::<http::uri::Authority>() else {
        return false;
    };
    let default_port = match scheme.as_str() {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    };
    let origin_port = port.or(default_port);
    let host_port = authority.port_u16().or(default_port);
    authority.host().eq_ignore_ascii_case(host) && origin_port == host_port
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn check(method: Method, pairs: &[(&str, &str)]) -> Option<&'static str> {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        cross_site(&method, &h, &Uri::from_static("/x"))
    }

    #[test]
    fn same_origin_and_headerless_requests_pass() {
        assert_eq!(check(Method::POST, &[]), None);
        assert_eq!(check(Method::POST, &[("host", "app.example:3000")]), None);
        assert_eq!(
            check(
                Method::POST,
                &[
                    ("host", "app.example:3000"),
                    ("origin", "http://app.example:3000")
                ]
            ),
            None
        );
        assert_eq!(
            check(
                Method::DELETE,
                &[
                    ("host", "App.Example"),
                    ("origin", "https://app.example:443")
                ]
            ),
            None
        );
        assert_eq!(
            check(
                Method::PUT,
                &[("host", "a"), ("sec-fetch-site", "same-origin")]
            ),
            None
        );
    }

    #[test]
    fn cross_site_writes_are_refused_and_reads_pass() {
        let evil = [("host", "app.example"), ("origin", "https://evil.example")];
        for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert!(check(m, &evil).is_some());
        }
        assert_eq!(check(Method::GET, &evil), None);
        assert!(check(Method::POST, &[("host", "a"), ("origin", "null")]).is_some());
        assert!(check(
            Method::POST,
            &[
                ("host", "app.example:3000"),
                ("origin", "http://app.example:4000")
            ]
        )
        .is_some());
        assert!(check(Method::PATCH, &[("sec-fetch-site", "cross-site")]).is_some());
        assert!(check(Method::POST, &[("origin", "http://app.example")]).is_some());
    }

    #[test]
    fn an_origin_of_another_scheme_is_refused() {
        // The default layer takes the site for https: a page on http://app.example (say, one a
        // network attacker injected) must not write to https://app.example.
        for (host, origin) in [
            ("app.example", "http://app.example"),
            ("app.example:443", "http://app.example:443"),
            ("app.example:8443", "http://app.example:8443"),
            ("app.example:80", "http://app.example"),
        ] {
            assert!(
                check(Method::POST, &[("host", host), ("origin", origin)]).is_some(),
                "{origin} passed on https://{host}"
            );
        }
        assert_eq!(
            check(
                Method::POST,
                &[("host", "app.example"), ("origin", "https://app.example")]
            ),
            None
        );
    }
}
