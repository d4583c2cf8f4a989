//! [`CsrfLayer`]: refuses cross-site state-changing requests (the rules are the core's
//! [`CsrfPolicy`]: whole origins, `Sec-Fetch-Site`, allowed origins, the site's scheme).
//!
//! Put the layer outermost (inside the [`SessionLayer`](super::SessionLayer), so a custom
//! rejection handler sees its refusals too), so it runs before routing and a cross-site
//! request to any path is refused.
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
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, HOST, ORIGIN};
use http::uri::Scheme;
use http::{HeaderValue, Request};
use tower::{Layer, Service};

use crate::error::Error;
use crate::web::{CsrfPolicy, CsrfRequest};

/// The layer; see the module docs and [`CsrfPolicy`].
#[derive(Debug, Clone, Default)]
pub struct CsrfLayer {
    policy: Arc<CsrfPolicy>,
}

impl CsrfLayer {
    /// The layer for a site served over https whose origin is `https://{Host}`.
    pub fn new() -> Self {
        Self::default()
    }

    /// The layer applying `policy`.
    pub fn from_policy(policy: CsrfPolicy) -> Self {
        Self {
            policy: Arc::new(policy),
        }
    }

    /// Allows exactly `origins` (see [`CsrfPolicy::with_allowed_origins`]).
    ///
    /// ```
    /// use session_core::axum::CsrfLayer;
    ///
    /// let layer = CsrfLayer::new()
    ///     .with_allowed_origins(["https://app.example", "https://admin.example:8443"])?;
    /// assert!(CsrfLayer::new().with_allowed_origins(["app.example"]).is_err());
    /// # Ok::<(), session_core::Error>(())
    /// ```
    ///
    /// **Security:** every listed origin can make a logged-in browser write with its session;
    /// list only origins you serve.
    ///
    /// # Errors
    /// [`Error::Config`] for an entry that is not such an origin, or for an empty list.
    pub fn with_allowed_origins<I, S>(self, origins: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let policy = (*self.policy).clone().with_allowed_origins(origins)?;
        Ok(Self::from_policy(policy))
    }

    /// Sets the scheme of the site's own origin (see [`CsrfPolicy::with_site_scheme`]).
    ///
    /// ```
    /// use axum::http::uri::Scheme;
    /// use session_core::axum::CsrfLayer;
    ///
    /// // Local development over plain http (with `CookieConfig::secure(false)`).
    /// let layer = CsrfLayer::new().with_site_scheme(Scheme::HTTP);
    /// ```
    ///
    /// **Security:** with `http`, a site that is in fact served over https accepts writes from
    /// pages on `http://` its host, which anyone on the network path can forge.
    #[must_use]
    pub fn with_site_scheme(self, scheme: Scheme) -> Self {
        Self::from_policy((*self.policy).clone().with_site_scheme(scheme))
    }
}

impl<S> Layer<S> for CsrfLayer {
    type Service = CsrfService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CsrfService {
            inner,
            policy: Arc::clone(&self.policy),
        }
    }
}

/// The service of [`CsrfLayer`].
#[derive(Debug, Clone)]
pub struct CsrfService<S> {
    inner: S,
    policy: Arc<CsrfPolicy>,
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
        let headers = req.headers();
        let verdict = self.policy.check(CsrfRequest {
            method: req.method().as_str(),
            origins: headers.get_all(ORIGIN).iter().map(|v| v.as_bytes()),
            sec_fetch_site: headers.get("sec-fetch-site").map(|v| v.as_bytes()),
            host: headers.get(HOST).map(|v| v.as_bytes()),
            uri_authority: req.uri().authority().map(|a| a.as_str()),
            path: req.uri().path(),
        });
        if let Err(rejection) = verdict {
            let mut res = rejection.into_response();
            res.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            return Box::pin(async move { Ok(res) });
        }
        Box::pin(self.inner.call(req))
    }
}
