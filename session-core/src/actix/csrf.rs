//! [`Csrf`]: the actix-web middleware that refuses cross-site state-changing requests, with the
//! same whole-origin rules as the axum `CsrfLayer` (the core's [`CsrfPolicy`]).

use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::rc::Rc;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{HeaderValue, CACHE_CONTROL, HOST, ORIGIN};

use crate::web::{CsrfPolicy, CsrfRequest};

/// The middleware; see [`CsrfPolicy`] for the rules. Register it with `.wrap(..)` before (that
/// is, inside) the [`SessionMiddleware`](super::SessionMiddleware), so the session
/// middleware's caching headers and rejection handler apply to its refusals too.
///
/// ```
/// use actix_web::{web, App, HttpResponse};
/// use session_core::actix::Csrf;
/// use session_core::web::CsrfPolicy;
///
/// let app = App::new()
///     .wrap(Csrf::new(CsrfPolicy::new()))
///     .route("/transfer", web::post().to(|| async { HttpResponse::Ok().finish() }));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Csrf {
    policy: Rc<CsrfPolicy>,
}

impl Csrf {
    /// The middleware applying `policy`.
    pub fn new(policy: CsrfPolicy) -> Self {
        Self {
            policy: Rc::new(policy),
        }
    }
}

impl<S, B> Transform<S, ServiceRequest> for Csrf
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B, BoxBody>>;
    type Error = actix_web::Error;
    type Transform = CsrfService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(CsrfService {
            inner: Rc::new(service),
            policy: Rc::clone(&self.policy),
        }))
    }
}

/// The service of [`Csrf`].
#[derive(Debug)]
pub struct CsrfService<S> {
    inner: Rc<S>,
    policy: Rc<CsrfPolicy>,
}

impl<S, B> Service<ServiceRequest> for CsrfService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B, BoxBody>>;
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, actix_web::Error>>>>;

    forward_ready!(inner);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let headers = req.headers();
        let verdict = self.policy.check(CsrfRequest {
            method: req.method().as_str(),
            origins: headers.get_all(ORIGIN).map(|v| v.as_bytes()),
            sec_fetch_site: headers.get("sec-fetch-site").map(|v| v.as_bytes()),
            host: headers.get(HOST).map(|v| v.as_bytes()),
            uri_authority: req.uri().authority().map(|a| a.as_str()),
            path: req.path(),
        });
        match verdict {
            Ok(()) => {
                let fut = self.inner.call(req);
                Box::pin(async move { Ok(fut.await?.map_into_left_body()) })
            }
            Err(rejection) => {
                // The answer keeps the rejection, so the session middleware's handler sees it.
                let mut res = req.error_response(rejection);
                res.headers_mut()
                    .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                Box::pin(ready(Ok(res.map_into_right_body())))
            }
        }
    }
}
