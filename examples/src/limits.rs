//! The request-body rules of the axum apps (`demo-server`, `demo-web`): a body must arrive
//! within `HTTP_BODY_TIMEOUT_SECS` of its request head, and a body declared larger than
//! [`BODY_LIMIT`] is refused before a byte of it is read.
//!
//! The two halves meet in the request's extensions: [`with_deadline`], called by the server
//! loop ([`crate::serve`]) for each request that has a body, makes the body fail once its
//! deadline has passed and marks the request ([`BodyDeadline`]); [`enforce`], a layer of the
//! app, answers 413 for an over-limit `Content-Length` and, for a marked request, replaces
//! whatever the handler made of the failed read (a 400, as a torn body would give) with the
//! app's 408. Both answers close the connection: the rest of the body is never read.
//!
//! Without a deadline a client that declares `Content-Length: 100` and sends one byte, or
//! trickles a chunked body a byte at a time, holds its connection and task for as long as it
//! likes; a timeout between frames (tower-http's `RequestBodyTimeoutLayer`) does not stop the
//! trickle, so the deadline is for the whole body.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use axum::BoxError;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::BODY_LIMIT;

/// Why [`enforce`] refused a request; the app renders the answer (JSON or HTML).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyRefusal {
    /// 413: the declared `Content-Length` is over [`BODY_LIMIT`].
    TooLarge,
    /// 408: the body did not arrive within `HTTP_BODY_TIMEOUT_SECS` of the request head.
    TimedOut,
}

/// How an app answers a [`BodyRefusal`] (the state of [`enforce`]).
pub type Refuse = fn(BodyRefusal) -> Response;

/// Marks a request whose body's deadline passed while it was being read (a request extension
/// put there by [`with_deadline`]).
#[derive(Debug, Clone, Default)]
pub struct BodyDeadline(Arc<AtomicBool>);

impl BodyDeadline {
    /// True once a read of the body waited past the deadline.
    pub fn passed(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The error a body gives once its deadline has passed.
#[derive(Debug)]
pub struct BodyTimedOut(Duration);

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request body did not arrive within {} s of its head",
            self.0.as_secs()
        )
    }
}

impl std::error::Error for BodyTimedOut {}

/// `req` with a body that fails `timeout` after now, and a [`BodyDeadline`] in its extensions;
/// a request without a body is returned as it is (nothing to wait for).
pub fn with_deadline<B>(req: hyper::Request<B>, timeout: Duration) -> Request
where
    B: HttpBody<Data = axum::body::Bytes> + Unpin + Send + 'static,
    B::Error: Into<BoxError>,
{
    if req.body().is_end_stream() {
        return req.map(Body::new);
    }
    let mark = BodyDeadline::default();
    let (mut parts, body) = req.into_parts();
    parts.extensions.insert(mark.clone());
    let body = DeadlineBody {
        inner: body,
        timeout,
        deadline: Instant::now() + timeout,
        sleep: None,
        mark,
    };
    Request::from_parts(parts, Body::new(body))
}

/// A body that gives [`BodyTimedOut`] when it is asked for data it does not have after its
/// deadline. Data that is there is always given, however late the reader comes.
struct DeadlineBody<B> {
    inner: B,
    timeout: Duration,
    deadline: Instant,
    /// Made at the first wait: a body read at once needs no timer.
    sleep: Option<Pin<Box<Sleep>>>,
    mark: BodyDeadline,
}

impl<B> HttpBody for DeadlineBody<B>
where
    B: HttpBody + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        ready!(sleep.as_mut().poll(cx));
        this.mark.0.store(true, Ordering::Relaxed);
        Poll::Ready(Some(Err(BodyTimedOut(this.timeout).into())))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The app's layer (`axum::middleware::from_fn_with_state(refuse, enforce)`): 413 at once for a
/// declared `Content-Length` over [`BODY_LIMIT`], whatever the route (the body is not read), and
/// 408 for a request whose body's deadline passed (see the module docs).
pub async fn enforce(State(refuse): State<Refuse>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
        return refuse(BodyRefusal::TooLarge);
    }
    let deadline = req.extensions().get::<BodyDeadline>().cloned();
    let res = next.run(req).await;
    if deadline.is_some_and(|d| d.passed()) {
        return refuse(BodyRefusal::TimedOut);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes;
    use axum::http::StatusCode;
    use axum::response::IntoResponse as _;
    use axum::routing::post;
    use axum::Router;
    use tower::ServiceExt as _;

    fn refuse(r: BodyRefusal) -> Response {
        match r {
            BodyRefusal::TooLarge => StatusCode::PAYLOAD_TOO_LARGE.into_response(),
            BodyRefusal::TimedOut => StatusCode::REQUEST_TIMEOUT.into_response(),
        }
    }

    fn app() -> Router {
        Router::new()
            .route(
                "/",
                post(|body: Bytes| async move { body.len().to_string() }),
            )
            .layer(axum::middleware::from_fn_with_state(
                refuse as Refuse,
                enforce,
            ))
    }

    /// A body that gives its first bytes and then nothing, for ever (a client gone quiet).
    struct Stalled(Option<Bytes>);

    impl HttpBody for Stalled {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            match self.0.take() {
                Some(first) => Poll::Ready(Some(Ok(Frame::data(first)))),
                None => Poll::Pending,
            }
        }
    }

    fn stalled() -> Stalled {
        Stalled(Some(Bytes::from_static(b"{")))
    }

    #[tokio::test]
    async fn a_body_that_stalls_past_its_deadline_gets_408() {
        let req = hyper::Request::post("/").body(stalled()).unwrap();
        let started = Instant::now();
        let res = app()
            .oneshot(with_deadline(req, Duration::from_millis(200)))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::REQUEST_TIMEOUT);
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(200), "{took:?}");
    }

    #[tokio::test]
    async fn a_whole_body_is_read_however_late_the_reader_comes() {
        let req = hyper::Request::post("/").body(Body::from("abc")).unwrap();
        let req = with_deadline(req, Duration::from_millis(50));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let res = app().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body = axum::body::to_bytes(res.into_body(), 64).await.unwrap();
        assert_eq!(&body[..], b"3");
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_gets_413_without_reading() {
        let req = hyper::Request::post("/")
            .header(header::CONTENT_LENGTH, (BODY_LIMIT + 1).to_string())
            .body(stalled())
            .unwrap();
        let res = app()
            .oneshot(with_deadline(req, Duration::from_secs(3600)))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
}
