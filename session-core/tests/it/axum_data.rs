//! Session data written through the axum extractors by many requests of one session at once:
//! per-key writes keep each other's keys, and `update` counts every increment, on the memory
//! store and on real Redis.

use std::sync::Arc;

use crate::common::unique_prefix;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{header, Request, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use redis_harness::RedisServer;
use session_core::axum::SessionLayer;
use session_core::prelude::*;
use session_core::web::{AuthSession, CurrentUser};
use tower::ServiceExt as _;

const COOKIE: &str = "__Host-session";
const REQUESTS: usize = 50;

async fn add_item(Path(i): Path<usize>, mut auth: AuthSession) -> Result<StatusCode, Error> {
    // A handler awaits other things (a database, say) between loading the session and writing
    // to it: the window in which a whole-data save loses other requests' keys.
    tokio::task::yield_now().await;
    auth.insert(&format!("item-{i}"), &i).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn drop_item(
    Path(i): Path<usize>,
    _: CurrentUser,
    mut user: AuthSession,
) -> Result<StatusCode, Error> {
    user.remove(&format!("item-{i}")).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn count(_: CurrentUser, mut user: AuthSession) -> Result<Json<u64>, Error> {
    tokio::task::yield_now().await;
    let n = user
        .update("count", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    // The request's session carries the stored data afterwards.
    assert_eq!(user.get::<u64>("count")?, Some(n));
    Ok(Json(n))
}

fn app(store: Arc<dyn SessionStore>) -> Router {
    Router::new()
        .route("/items/{i}", post(add_item).delete(drop_item))
        .route("/count", post(count))
        .layer(SessionLayer::new(store))
}

fn request(method: &str, path: &str, token: &Token) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(
            header::COOKIE,
            format!("{COOKIE}={}", token.as_cookie_value()),
        )
        .body(Body::empty())
        .unwrap()
}

/// Sends every request at once; returns the statuses and bodies.
async fn all_at_once(app: &Router, requests: Vec<Request<Body>>) -> Vec<(StatusCode, Vec<u8>)> {
    let sent: Vec<_> = requests
        .into_iter()
        .map(|req| {
            let app = app.clone();
            tokio::spawn(async move {
                let res = app.oneshot(req).await.unwrap();
                let status = res.status();
                let body = axum::body::to_bytes(res.into_body(), 1 << 16)
                    .await
                    .unwrap();
                (status, body.to_vec())
            })
        })
        .collect();
    let mut out = Vec::new();
    for s in sent {
        out.push(s.await.unwrap());
    }
    out
}

async fn concurrent_requests_lose_no_session_data(store: Arc<dyn SessionStore>) {
    let app = app(Arc::clone(&store));
    let (token, _) = store.create(NewSession::new("alice")).await.unwrap();

    // 50 "add to cart" requests at once, each its own key.
    let adds = (0..REQUESTS)
        .map(|i| request("POST", &format!("/items/{i}"), &token))
        .collect();
    for (status, body) in all_at_once(&app, adds).await {
        assert_eq!(
            status,
            StatusCode::NO_CONTENT,
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
    let data = store.load(&token).await.unwrap().unwrap().data().clone();
    let missing: Vec<usize> = (0..REQUESTS)
        .filter(|i| data.get::<usize>(&format!("item-{i}")).unwrap() != Some(*i))
        .collect();
    assert!(missing.is_empty(), "items lost: {missing:?}");

    // Half of them removed at once, while 50 increments of one counter run.
    let mut mixed: Vec<_> = (0..REQUESTS)
        .step_by(2)
        .map(|i| request("DELETE", &format!("/items/{i}"), &token))
        .collect();
    mixed.extend((0..REQUESTS).map(|_| request("POST", "/count", &token)));
    let mut counts = Vec::new();
    for (status, body) in all_at_once(&app, mixed).await {
        match status {
            StatusCode::NO_CONTENT => {}
            StatusCode::OK => counts.push(serde_json::from_slice::<u64>(&body).unwrap()),
            other => panic!("{other}: {}", String::from_utf8_lossy(&body)),
        }
    }
    counts.sort_unstable();
    assert_eq!(counts, (1..=REQUESTS as u64).collect::<Vec<_>>());
    let data = store.load(&token).await.unwrap().unwrap().data().clone();
    assert_eq!(data.get::<u64>("count").unwrap(), Some(REQUESTS as u64));
    for i in 0..REQUESTS {
        let want = (i % 2 == 1).then_some(i);
        assert_eq!(
            data.get::<usize>(&format!("item-{i}")).unwrap(),
            want,
            "item {i}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_lose_no_session_data_in_memory() {
    concurrent_requests_lose_no_session_data(Arc::new(MemoryStore::new(SessionConfig::default())))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_lose_no_session_data_in_redis() {
    let server = RedisServer::start_local().unwrap();
    let config = SessionConfig::builder()
        .key_prefix(unique_prefix())
        .build()
        .unwrap();
    let store = RedisStore::connect(server.url(), config).await.unwrap();
    concurrent_requests_lose_no_session_data(Arc::new(store)).await;
}
