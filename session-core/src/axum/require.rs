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

/// The service of a [`Require`] route layer.
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
