//! `Metered` records one counter and one histogram sample per store call, labelled with the
//! operation and its outcome, around any store (here the Redis store on a real server); the
//! axum and actix-web adapters count every refused request once in `session_rejections_total`,
//! by reason, also when the app's rejection handler writes the answer.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::common::unique_prefix;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::{CompositeKey, MetricKind};
use redis_harness::RedisServer;
use session_core::metrics::{Metered, OPERATIONS_TOTAL, OPERATION_SECONDS, REJECTIONS_TOTAL};
use session_core::{Error, NewSession, RedisStore, SessionConfig, SessionStore, Token};

fn label_of<'a>(key: &'a CompositeKey, name: &str) -> Option<&'a str> {
    key.key()
        .labels()
        .find(|l| l.key() == name)
        .map(|l| l.value())
}

/// A store call of each outcome through `Metered` (on Redis), and one refusal.
async fn one_call_of_each_outcome() {
    let server = RedisServer::start().expect("a Redis server for the tests");
    let config = SessionConfig::builder()
        .key_prefix(unique_prefix())
        .build()
        .expect("config");
    let store = Arc::new(Metered::new(Arc::new(
        RedisStore::connect(server.url(), config)
            .await
            .expect("connect"),
    )));
    let (token, _) = store.create(NewSession::new("mia")).await.expect("create");
    assert!(store.load(&token).await.expect("load").is_some());
    let stranger =
        Token::generate(std::time::SystemTime::now() + std::time::Duration::from_secs(60))
            .expect("token");
    assert!(store.load(&stranger).await.expect("load").is_none());
    assert!(matches!(
        store.create(NewSession::new("")).await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        store.rotate(&stranger).await,
        Err(Error::NotFound)
    ));
}

#[test]
fn every_store_call_is_counted_by_operation_and_outcome() {
    // A recorder of this test's own, local to its thread, not installed for the process: the
    // guard tests running in parallel in this binary count their refusals too.
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    with_recorder(&recorder, one_call_of_each_outcome());

    let mut counts = std::collections::BTreeMap::new();
    let mut durations = 0usize;
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        match (key.kind(), key.key().name(), value) {
            (MetricKind::Counter, OPERATIONS_TOTAL, DebugValue::Counter(n)) => {
                let op = label_of(&key, "op").expect("op label").to_owned();
                let outcome = label_of(&key, "outcome").expect("outcome label").to_owned();
                counts.insert((op, outcome), n);
            }
            (MetricKind::Histogram, OPERATION_SECONDS, DebugValue::Histogram(samples)) => {
                durations += samples.len();
            }
            (MetricKind::Counter, REJECTIONS_TOTAL, _) => {
                panic!("a store call counted as a refused request: {key:?}")
            }
            _ => {}
        }
    }
    let expected: std::collections::BTreeMap<(String, String), u64> = [
        (("create", "ok"), 1),
        (("create", "invalid_input"), 1),
        (("load", "ok"), 1),
        (("load", "none"), 1),
        (("rotate", "not_found"), 1),
    ]
    .into_iter()
    .map(|((op, outcome), n)| ((op.to_owned(), outcome.to_owned()), n))
    .collect();
    assert_eq!(counts, expected);
    assert_eq!(durations, 5, "one duration sample per call");
}

// ---- Refused requests, counted by the adapters ------------------------------------------------
//
// Each test records into a `DebuggingRecorder` of its own, local to its thread (the runtimes
// here run every task on that thread), so the counts are exact whatever else runs in parallel.

/// `session_rejections_total` by `reason`, from a snapshot; any other label fails the test.
fn rejections(snapshotter: &metrics_util::debugging::Snapshotter) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        if key.key().name() != REJECTIONS_TOTAL {
            continue;
        }
        assert_eq!(key.kind(), MetricKind::Counter, "{key:?}");
        let labels: Vec<&str> = key.key().labels().map(|l| l.key()).collect();
        assert_eq!(labels, ["reason"], "{key:?}");
        let DebugValue::Counter(n) = value else {
            panic!("{key:?} is not a counter")
        };
        let reason = label_of(&key, "reason").expect("reason").to_owned();
        assert!(counts.insert(reason, n).is_none(), "one series per reason");
    }
    counts
}

fn expected(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(r, n)| ((*r).to_owned(), *n)).collect()
}

/// Runs `test` on a current-thread runtime with `recorder` as this thread's recorder.
fn with_recorder<F: std::future::Future>(recorder: &DebuggingRecorder, test: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    metrics::with_local_recorder(recorder, || runtime.block_on(test))
}

mod axum_app {
    use super::*;
    use axum::body::Body;
    use axum::http::{header, Request, StatusCode};
    use axum::response::{IntoResponse, Redirect, Response};
    use axum::routing::{get, post};
    use axum::Router;
    use session_core::axum::SessionLayer;
    use session_core::prelude::*;
    use session_core::web::{AuthSession, CurrentUser, Rejection};
    use session_core::MemoryStore;
    use tower::ServiceExt as _;

    async fn login(mut auth: AuthSession) -> Result<&'static str, Error> {
        auth.login(NewSession::new("alice").with_roles(["USER"]))
            .await?;
        Ok("welcome")
    }

    #[login_required]
    async fn me(user: CurrentUser) -> String {
        user.user_id().to_owned()
    }

    #[has_role("ADMIN")]
    async fn admin() -> &'static str {
        "admin"
    }

    /// The quick start's app (the session layer's default CSRF check), `custom`: with a rejection
    /// handler that redirects the 401 and answers the rest with the default JSON.
    pub(super) fn app(custom: bool) -> Router {
        let store = Arc::new(MemoryStore::new(SessionConfig::default()));
        let mut sessions = SessionLayer::new(store);
        if custom {
            sessions = sessions.with_rejection(|rejection, _| match rejection {
                Rejection::Unauthenticated { .. } => Redirect::to("/login").into_response(),
                other => other.into_response(),
            });
        }
        Router::new()
            .route("/login", post(login))
            .route("/me", get(me))
            .route("/admin", get(admin))
            .layer(sessions)
    }

    pub(super) async fn send(app: &Router, req: Request<Body>) -> Response {
        app.clone().oneshot(req).await.expect("infallible")
    }

    fn get_req(path: &str, cookie: Option<&str>) -> Request<Body> {
        let mut req = Request::get(path).header(header::HOST, "app.example");
        if let Some(cookie) = cookie {
            req = req.header(header::COOKIE, cookie);
        }
        req.body(Body::empty()).expect("request")
    }

    fn login_from(origin: &str) -> Request<Body> {
        Request::post("/login")
            .header(header::HOST, "app.example")
            .header(header::ORIGIN, origin)
            .body(Body::empty())
            .expect("request")
    }

    /// One 401, one 403 and one CSRF refusal, with the statuses each answer should have.
    pub(super) async fn refuse_three_times(app: &Router, statuses: [StatusCode; 3]) {
        let res = send(app, get_req("/me", None)).await;
        assert_eq!(res.status(), statuses[0], "GET /me without a cookie");

        let res = send(app, login_from("https://app.example")).await;
        assert_eq!(res.status(), StatusCode::OK, "a same-origin login");
        let set_cookie = res.headers()[header::SET_COOKIE].to_str().expect("ascii");
        let cookie = set_cookie.split(';').next().expect("name=value").to_owned();
        let res = send(app, get_req("/me", Some(&cookie))).await;
        assert_eq!(res.status(), StatusCode::OK, "GET /me with the cookie");

        let res = send(app, get_req("/admin", Some(&cookie))).await;
        assert_eq!(res.status(), statuses[1], "GET /admin as a USER");

        let res = send(app, login_from("https://evil.example")).await;
        assert_eq!(res.status(), statuses[2], "a cross-site login");
    }
}

/// The rejections counted while the axum app (with the app's rejection handler when `custom`)
/// refuses three requests, answering `statuses`.
fn axum_refusals_counted(custom: bool, statuses: [u16; 3]) -> BTreeMap<String, u64> {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    with_recorder(&recorder, async {
        let app = axum_app::app(custom);
        let statuses = statuses.map(|s| axum::http::StatusCode::from_u16(s).expect("a status"));
        axum_app::refuse_three_times(&app, statuses).await;
    });
    rejections(&snapshotter)
}

#[test]
fn axum_counts_each_refused_request_once_by_reason() {
    assert_eq!(
        axum_refusals_counted(false, [401, 403, 403]),
        expected(&[("unauthenticated", 1), ("forbidden", 1), ("csrf", 1)])
    );
}

/// The handler redirects the 401 and calls the default `into_response` for the rest: that
/// second conversion must not count again.
#[test]
fn axum_counts_refusals_answered_by_the_apps_rejection_handler_once() {
    assert_eq!(
        axum_refusals_counted(true, [303, 403, 403]),
        expected(&[("unauthenticated", 1), ("forbidden", 1), ("csrf", 1)])
    );
}

#[test]
fn no_request_refused_no_rejection_counted() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    with_recorder(&recorder, async {
        use axum::body::Body;
        use axum::http::Request;
        let app = axum_app::app(false);
        let res = axum_app::send(
            &app,
            Request::post("/login")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
        assert_eq!(res.status(), axum::http::StatusCode::OK);
    });
    assert_eq!(rejections(&snapshotter), BTreeMap::new());
}

#[cfg(feature = "actix")]
mod actix_app {
    use super::*;
    use actix_web::http::{header, StatusCode};
    use actix_web::test::{call_service, init_service, TestRequest};
    use actix_web::{web, App, HttpResponse, ResponseError};
    use session_core::actix::SessionMiddleware;
    use session_core::prelude::*;
    use session_core::web::{AuthSession, CurrentUser, Rejection};
    use session_core::MemoryStore;

    async fn login(mut auth: AuthSession) -> Result<HttpResponse, Error> {
        auth.login(NewSession::new("alice").with_roles(["USER"]))
            .await?;
        Ok(HttpResponse::Ok().body("welcome"))
    }

    #[login_required]
    async fn me(user: CurrentUser) -> HttpResponse {
        HttpResponse::Ok().body(user.user_id().to_owned())
    }

    #[has_role("ADMIN")]
    async fn admin() -> HttpResponse {
        HttpResponse::Ok().body("admin")
    }

    fn get_req(path: &str, cookie: Option<&str>) -> TestRequest {
        let mut req = TestRequest::get()
            .uri(path)
            .insert_header((header::HOST, "app.example"));
        if let Some(cookie) = cookie {
            req = req.insert_header((header::COOKIE, cookie.to_owned()));
        }
        req
    }

    fn login_from(origin: &str) -> TestRequest {
        TestRequest::post()
            .uri("/login")
            .insert_header((header::HOST, "app.example"))
            .insert_header((header::ORIGIN, origin.to_owned()))
    }

    /// The quick start's app; one 401, one 403 and one CSRF refusal, with the statuses each
    /// answer should have. `custom`: with a rejection handler that redirects the 401 and
    /// answers the rest with the default JSON.
    pub(super) async fn refuse_three_times(custom: bool, statuses: [u16; 3]) {
        let store = Arc::new(MemoryStore::new(SessionConfig::default()));
        let mut sessions = SessionMiddleware::new(store);
        if custom {
            sessions = sessions.with_rejection(|rejection, _| match rejection {
                Rejection::Unauthenticated { .. } => HttpResponse::SeeOther()
                    .insert_header((header::LOCATION, "/login"))
                    .finish(),
                other => other.error_response(),
            });
        }
        let app = init_service(
            App::new()
                .route("/login", web::post().to(login))
                .route("/me", web::get().to(me))
                .route("/admin", web::get().to(admin))
                .wrap(sessions),
        )
        .await;

        let res = call_service(&app, get_req("/me", None).to_request()).await;
        assert_eq!(
            res.status().as_u16(),
            statuses[0],
            "GET /me without a cookie"
        );

        let res = call_service(&app, login_from("https://app.example").to_request()).await;
        assert_eq!(res.status(), StatusCode::OK, "a same-origin login");
        let set_cookie = res
            .headers()
            .get(header::SET_COOKIE)
            .expect("Set-Cookie")
            .to_str()
            .expect("ascii")
            .to_owned();
        let cookie = set_cookie.split(';').next().expect("name=value");
        let res = call_service(&app, get_req("/me", Some(cookie)).to_request()).await;
        assert_eq!(res.status(), StatusCode::OK, "GET /me with the cookie");

        let res = call_service(&app, get_req("/admin", Some(cookie)).to_request()).await;
        assert_eq!(res.status().as_u16(), statuses[1], "GET /admin as a USER");

        let res = call_service(&app, login_from("https://evil.example").to_request()).await;
        assert_eq!(res.status().as_u16(), statuses[2], "a cross-site login");
    }

    /// Runs `test` in an actix system (one thread) with `recorder` as this thread's recorder.
    pub(super) fn with_recorder<F: std::future::Future>(
        recorder: &DebuggingRecorder,
        test: F,
    ) -> F::Output {
        metrics::with_local_recorder(recorder, || actix_web::rt::System::new().block_on(test))
    }
}

/// The rejections counted while the actix app (with the app's rejection handler when
/// `custom`) refuses three requests, answering `statuses`.
#[cfg(feature = "actix")]
fn actix_refusals_counted(custom: bool, statuses: [u16; 3]) -> BTreeMap<String, u64> {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    actix_app::with_recorder(&recorder, actix_app::refuse_three_times(custom, statuses));
    rejections(&snapshotter)
}

#[cfg(feature = "actix")]
#[test]
fn actix_counts_each_refused_request_once_by_reason() {
    assert_eq!(
        actix_refusals_counted(false, [401, 403, 403]),
        expected(&[("unauthenticated", 1), ("forbidden", 1), ("csrf", 1)])
    );
}

#[cfg(feature = "actix")]
#[test]
fn actix_counts_refusals_answered_by_the_apps_rejection_handler_once() {
    assert_eq!(
        actix_refusals_counted(true, [303, 403, 403]),
        expected(&[("unauthenticated", 1), ("forbidden", 1), ("csrf", 1)])
    );
}
