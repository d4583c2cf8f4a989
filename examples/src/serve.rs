//! [`serve`]: the demo's HTTP/1 server loop. `axum::serve` has no timeout for reading a request
//! head, so a client that opens connections and sends its headers a byte at a time (Slowloris)
//! would hold each connection, and its task and buffers, for ever; this loop is hyper's own
//! connection builder with a header-read timeout and a timer, a deadline for each request's
//! body ([`crate::limits`]), and graceful shutdown.

use std::future::Future;
use std::io;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt as _;

use crate::{limits, HttpService};

/// How long a client may take to send a request: its head, then its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadTimeouts {
    /// `HTTP_HEADER_TIMEOUT_SECS`: a connection that has not sent a complete request head
    /// this long after it was accepted, or after the previous answer on it, is closed.
    pub head: Duration,
    /// `HTTP_BODY_TIMEOUT_SECS`: a request whose body has not arrived whole this long after
    /// its head is answered 408 and its connection closed.
    pub body: Duration,
}

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting and waits for
/// the requests in flight (idle keep-alive connections are closed at once).
///
/// A connection that has not sent a complete request head `timeouts.head` after it was
/// accepted, or after the previous answer on it, is closed; a request body that has not
/// arrived `timeouts.body` after its head fails, and the app answers 408
/// ([`limits::enforce`]).
///
/// # Errors
/// None so far: accept errors are logged and retried (after 1 s unless the peer just went
/// away, as `axum::serve` does).
pub async fn serve(
    listener: TcpListener,
    app: HttpService,
    timeouts: ReadTimeouts,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let mut http = http1::Builder::new();
    // hyper runs the header-read timer only with a timer; without one (as under axum::serve)
    // a slow head is waited for without end.
    http.timer(TokioTimer::new())
        .header_read_timeout(timeouts.head);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => (stream, peer),
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors, say: wait for some to be closed.
                    tracing::error!(error = %e, "accept failed; retrying in 1 s");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        () = &mut shutdown => break,
                    }
                }
            },
            () = &mut shutdown => break,
        };
        // The client's address, for handlers that share something fairly between clients
        // (the password queue), as axum's `ConnectInfo` extractor reads it.
        let service = app.clone().map_request(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            limits::with_deadline(req, timeouts.body)
        });
        let conn = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                // Header timeouts, clients that hang up mid-request, malformed requests.
                // (A body past its deadline is answered, not an error here.)
                tracing::debug!(error = %e, "connection closed with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
