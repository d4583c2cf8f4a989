//! [`Require`] as an axum route layer: the guards without macros.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use crate::axum::extract::context;
use crate::web::Require;

impl<S> Layer<S> for Require {
    type Service = RequireService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireService {
            inner,
            require: self.clone(),
        }
    }
}

/// The service of a [`Require`] route layer (not nameable outside the crate: a route's layer
/// is never named).
#[derive(Debug, Clone)]
pub struct RequireService<S> {
    inner: S,
    require: Require,
}

impl<S> Service<Request> for RequireService<S>
where
    S: Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let require = self.require.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let ctx = match context(&parts) {
                Ok(ctx) => ctx,
                Err(missing) => return Ok(missing.into_response()),
            };
            match require.enforce(&ctx).await {
                Ok(()) => inner.call(Request::from_parts(parts, body)).await,
                Err(rejection) => Ok(rejection.into_response()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use axum::body::Body;
    use axum::http::{header, Request, StatusCode};
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt as _;

    use crate::axum::SessionLayer;
    use crate::web::requirement::FreshLogin;
    use crate::web::{Guard, Require};
    use crate::{Clock, MemoryStore, NewSession, SessionConfig, SessionStore, Token};

    async fn guarded(_: Guard<FreshLogin<300>>) -> &'static str {
        "ok"
    }

    async fn answer(app: &Router, path: &str, token: &Token) -> (StatusCode, String) {
        let req = Request::builder()
            .uri(path)
            .header(
                header::COOKIE,
                format!("__Host-session={}", token.as_cookie_value()),
            )
            .body(Body::empty())
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let body = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// `#[fresh_login]` (a `Guard<FreshLogin<_>>`) and `Require::fresh` judge freshness by the
    /// store's clock: exactly `max_age` after the password it is still fresh, a millisecond
    /// later it is not, and re-authentication makes it fresh again.
    #[tokio::test]
    async fn freshness_guards_read_the_stores_clock() {
        let clock = Clock::manual(SystemTime::now());
        let config = SessionConfig::builder()
            .clock(clock.clone())
            .build()
            .unwrap();
        let store = Arc::new(MemoryStore::new(config));
        let app = Router::new()
            .route("/guard", get(guarded))
            .merge(
                Router::new()
                    .route("/layer", get(|| async { "ok" }))
                    .route_layer(Require::fresh(Duration::from_secs(300))),
            )
            .layer(SessionLayer::new(
                Arc::clone(&store) as Arc<dyn SessionStore>
            ));
        let (token, _) = store.create(NewSession::new("fay")).await.unwrap();

        clock.advance(Duration::from_secs(300)).unwrap();
        for path in ["/guard", "/layer"] {
            assert_eq!(answer(&app, path, &token).await.0, StatusCode::OK, "{path}");
        }
        clock.advance(Duration::from_millis(1)).unwrap();
        for path in ["/guard", "/layer"] {
            let (status, body) = answer(&app, path, &token).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
            assert!(body.contains("reauthentication_required"), "{path}: {body}");
        }
        let (token, _) = store.reauthenticate(&token, "password").await.unwrap();
        for path in ["/guard", "/layer"] {
            assert_eq!(answer(&app, path, &token).await.0, StatusCode::OK, "{path}");
        }
    }
}
