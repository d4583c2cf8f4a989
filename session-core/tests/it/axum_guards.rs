//! Router-level tests of the axum integration (tower's `oneshot`, no network): every guard
//! attribute against every kind of caller, on the memory store and on real Redis.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, Request, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use redis_harness::RedisServer;
use serde_json::Value;
use session_core::axum::SessionLayer;
use session_core::prelude::*;
use session_core::web::{AuthSession, CookieConfig, CurrentUser, Rejection, Require};
use session_core::Clock;
use switchable::Switchable;
use tower::ServiceExt as _;

use crate::switchable;

thread_local! {
    /// Counts how often a guarded handler's body ran, per test: libtest runs each test on a
    /// thread of its own, and `#[tokio::test]`'s current-thread runtime runs the handlers on
    /// it. (A static counter also counted the bodies of the tests running in parallel, which
    /// could make "the body did not run" fail, or "it ran" pass, for the wrong reason.)
    static RAN: Cell<usize> = const { Cell::new(0) };
}

fn ran() -> usize {
    RAN.with(Cell::get)
}

fn body_ran() -> &'static str {
    RAN.with(|ran| ran.set(ran.get() + 1));
    "ok"
}

#[login_required]
async fn login_only() -> &'static str {
    body_ran()
}

#[has_role("ADMIN")]
async fn role() -> &'static str {
    body_ran()
}

#[has_any_role("ADMIN", "SUPPORT")]
async fn any_role() -> &'static str {
    body_ran()
}

#[has_all_roles("ADMIN", "AUDITOR")]
async fn all_roles() -> &'static str {
    body_ran()
}

#[has_permission("orders:write")]
async fn permission() -> &'static str {
    body_ran()
}

#[has_any_permission("orders:write", "orders:admin")]
async fn any_permission() -> &'static str {
    body_ran()
}

#[has_all_permissions("orders:read", "orders:write")]
async fn all_permissions() -> &'static str {
    body_ran()
}

/// A guarded handler that also takes the user and a JSON body (the body extractor last).
#[has_role("ADMIN")]
async fn with_body(user: CurrentUser, Json(order): Json<Value>) -> Json<Value> {
    body_ran();
    Json(serde_json::json!({ "user": user.user_id(), "order": order }))
}

async fn login(mut auth: AuthSession, Json(body): Json<Value>) -> Result<Json<Value>, Error> {
    let user = body["user"].as_str().unwrap_or("alice").to_owned();
    let session = auth
        .login(NewSession::new(user).with_roles(["USER"]))
        .await?;
    Ok(Json(serde_json::json!({ "user": session.user_id() })))
}

async fn logout(mut auth: AuthSession) -> Result<StatusCode, Error> {
    auth.logout().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[login_required]
async fn visit(mut user: AuthSession) -> Result<Json<Value>, Error> {
    let visits = user.get::<u32>("visits")?.unwrap_or(0) + 1;
    user.insert("visits", &visits).await?;
    Ok(Json(serde_json::json!({ "visits": visits })))
}

#[has_role("ADMIN")]
async fn counted_admin(State(count): State<Arc<AtomicUsize>>) -> &'static str {
    count.fetch_add(1, Ordering::SeqCst);
    "ok"
}

#[login_required]
async fn counted_login(
    State(count): State<Arc<AtomicUsize>>,
    Json(_): Json<Value>,
) -> &'static str {
    count.fetch_add(1, Ordering::SeqCst);
    "ok"
}

const GUARDED: [&str; 7] = [
    "/login_required",
    "/has_role",
    "/has_any_role",
    "/has_all_roles",
    "/has_permission",
    "/has_any_permission",
    "/has_all_permissions",
];

fn app(store: Arc<dyn SessionStore>) -> Router {
    Router::new()
        .route("/login_required", get(login_only))
        .route("/has_role", get(role))
        .route("/has_any_role", get(any_role))
        .route("/has_all_roles", get(all_roles))
        .route("/has_permission", get(permission))
        .route("/has_any_permission", get(any_permission))
        .route("/has_all_permissions", get(all_permissions))
        .route("/orders", post(with_body))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/visit", get(visit))
        .merge(
            Router::new()
                .route("/layered", get(|| async { body_ran() }))
                .route_layer(Require::all_roles(["ADMIN", "AUDITOR"])),
        )
        .layer(SessionLayer::new(store))
}

const COOKIE: &str = "__Host-session";

fn request(method: &str, path: &str, token: Option<&Token>) -> Request<Body> {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header(header::COOKIE, format!("{COOKIE}={}", t.as_cookie_value()));
    }
    req.body(Body::empty()).unwrap()
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, Value, Response<()>) {
    let res = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (parts.status, json, Response::from_parts(parts, ()))
}

/// The callers of the matrix: a user without the roles and permissions, and one with them.
async fn users(store: &dyn SessionStore) -> (Token, Token) {
    let (without, _) = store
        .create(
            NewSession::new("plain")
                .with_roles(["USER"])
                .with_permissions(["orders:read"]),
        )
        .await
        .unwrap();
    let (with, _) = store
        .create(
            NewSession::new("boss")
                .with_roles(["ADMIN", "AUDITOR", "SUPPORT"])
                .with_permissions(["orders:read", "orders:write"]),
        )
        .await
        .unwrap();
    (without, with)
}

async fn expect(app: &Router, path: &str, token: Option<&Token>, status: StatusCode, code: &str) {
    let before = ran();
    let (got, json, res) = send(app, request("GET", path, token)).await;
    assert_eq!(got, status, "{path} with {token:?}: {json}");
    if status.is_success() {
        assert!(ran() > before, "{path}: handler did not run");
    } else {
        assert_eq!(json["error"], code, "{path}: {json}");
        assert!(json["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            "application/json",
            "{path}"
        );
    }
}

/// Every guard × {anonymous, without the role, with it}; the body runs only when allowed.
async fn guard_matrix(store: Arc<dyn SessionStore>) {
    let app = app(Arc::clone(&store));
    let (without, with) = users(&*store).await;
    for path in GUARDED.iter().copied().chain(["/layered"]) {
        expect(
            &app,
            path,
            None,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
        let without_status = if path == "/login_required" {
            StatusCode::OK
        } else {
            StatusCode::FORBIDDEN
        };
        expect(&app, path, Some(&without), without_status, "forbidden").await;
        expect(&app, path, Some(&with), StatusCode::OK, "").await;
        // A token nobody issued, and one that was logged out, are anonymous.
        let stranger = Token::generate(SystemTime::now() + Duration::from_secs(3600)).unwrap();
        expect(
            &app,
            path,
            Some(&stranger),
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
    }
}

/// With the store down every guarded route answers 503 and no handler body runs.
async fn store_down_matrix(app: &Router, token: &Token) {
    for path in GUARDED.iter().copied().chain(["/layered", "/visit"]) {
        expect(
            app,
            path,
            Some(token),
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
        )
        .await;
    }
    // Anonymous requests need no store: still 401, not 503.
    expect(
        app,
        "/has_role",
        None,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    // Logging in needs the store: 503, and no cookie.
    let (status, json, res) = send(app, json_request("/login", r#"{"user":"x"}"#, None)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{json}");
    assert!(res.headers().get(header::SET_COOKIE).is_none());
}

fn json_request(path: &str, body: &str, token: Option<&Token>) -> Request<Body> {
    let mut req = Request::builder()
        .method("POST")
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        req = req.header(header::COOKIE, format!("{COOKIE}={}", t.as_cookie_value()));
    }
    req.body(Body::from(body.to_owned())).unwrap()
}

#[tokio::test]
async fn every_guard_on_the_memory_store() {
    guard_matrix(Arc::new(MemoryStore::new(SessionConfig::default()))).await;
}

#[tokio::test]
async fn every_guard_on_redis_and_with_redis_down() {
    let mut server = RedisServer::start_local().unwrap();
    let config = SessionConfig::builder()
        .key_prefix(crate::common::unique_prefix())
        .build()
        .unwrap();
    let store = RedisStore::connect(server.url(), config)
        .await
        .unwrap()
        .with_operation_timeout(std::time::Duration::from_millis(300))
        .unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(store);
    guard_matrix(Arc::clone(&store)).await;

    let (_, with) = users(&*store).await;
    server.kill();
    let app = app(Arc::clone(&store));
    store_down_matrix(&app, &with).await;
    server.restart().unwrap();
    // Recovered by itself: a new login works through the same app.
    let (status, _, res) = send(&app, json_request("/login", r#"{"user":"back"}"#, None)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(res.headers().get(header::SET_COOKIE).is_some());
}

#[tokio::test]
async fn every_guard_with_the_memory_store_down() {
    let store = Arc::new(Switchable::default());
    let app = app(store.clone());
    let (_, with) = users(&*store).await;
    store.down.store(true, Ordering::SeqCst);
    store_down_matrix(&app, &with).await;
}

#[tokio::test]
async fn guard_runs_before_the_body_and_its_extractors() {
    let store = Arc::new(MemoryStore::new(SessionConfig::default()));
    let app = app(store.clone());
    let (without, with) = users(&*store).await;
    // A router of its own whose guarded handlers count into their own counter.
    let count = Arc::new(AtomicUsize::new(0));
    let own = Router::new()
        .route("/admin", post(counted_admin))
        .route("/login", post(counted_login))
        .with_state(Arc::clone(&count))
        .layer(SessionLayer::new(store.clone()));
    for (path, token, status) in [
        ("/admin", None, StatusCode::UNAUTHORIZED),
        ("/admin", Some(&without), StatusCode::FORBIDDEN),
        ("/login", None, StatusCode::UNAUTHORIZED),
    ] {
        let (got, _, _) = send(&own, json_request(path, "{}", token)).await;
        assert_eq!(got, status, "{path}");
        assert_eq!(
            count.load(Ordering::SeqCst),
            0,
            "{path}: body ran for a refused request"
        );
    }
    let (status, _, _) = send(&own, json_request("/admin", "{}", Some(&with))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(&own, json_request("/login", "{}", Some(&without))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(count.load(Ordering::SeqCst), 2);

    // The body extractor comes after the guard: a forbidden caller with a malformed body gets
    // 403, not the body's 400/422, and an anonymous one 401.
    let (status, json, _) = send(&app, json_request("/orders", "not json", Some(&without))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{json}");
    let (status, _, _) = send(&app, json_request("/orders", "not json", None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, json, _) = send(&app, json_request("/orders", r#"{"n":1}"#, Some(&with))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["user"], "boss");
    assert_eq!(json["order"]["n"], 1);
}

#[tokio::test]
async fn one_session_lookup_per_request_and_none_for_malformed_cookies() {
    let store = Arc::new(Switchable::default());
    let app = app(store.clone());
    let (_, with) = users(&*store).await;
    let loads = || store.loads.load(Ordering::SeqCst);

    let before = loads();
    let (status, _, _) = send(&app, json_request("/orders", r#"{"n":1}"#, Some(&with))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        loads() - before,
        1,
        "guard + CurrentUser must share one lookup"
    );

    let before = loads();
    let long = "A".repeat(8192);
    for bad in [
        "garbage",
        long.as_str(),
        "++++++++++++++++++++++++++++++++++++++++++A",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB",
    ] {
        let req = Request::builder()
            .uri("/has_role")
            .header(header::COOKIE, format!("{COOKIE}={bad}"))
            .body(Body::empty())
            .unwrap();
        let (status, json, _) = send(&app, req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{json}");
    }
    for raw in [
        &b"__Host-session=\xff\xfe"[..],
        b"__Host-session=\x80\xa0abc",
    ] {
        let req = Request::builder()
            .uri("/has_role")
            .header(
                header::COOKIE,
                axum::http::HeaderValue::from_bytes(raw).unwrap(),
            )
            .body(Body::empty())
            .unwrap();
        assert_eq!(send(&app, req).await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(loads(), before, "a malformed cookie reached the store");
}

#[tokio::test]
async fn login_sets_a_secure_cookie_and_always_rotates() {
    let store = Arc::new(MemoryStore::new(SessionConfig::default()));
    let app = app(store.clone());

    let (status, json, res) = send(&app, json_request("/login", r#"{"user":"alice"}"#, None)).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let set = res.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    for attr in [
        "__Host-session=",
        "HttpOnly",
        "SameSite=Lax",
        "Secure",
        "Path=/",
    ] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    assert!(!set.contains("Domain"));
    assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
    let first = cookie_token(&set);
    assert_eq!(
        store.load(&first).await.unwrap().unwrap().user_id(),
        "alice"
    );

    // Logging in again on a request that has a session (here: another user's) ends it and
    // issues a new token; the presented one is never reused.
    let (_, _, res) = send(
        &app,
        json_request("/login", r#"{"user":"bob"}"#, Some(&first)),
    )
    .await;
    let second = cookie_token(res.headers()[header::SET_COOKIE].to_str().unwrap());
    assert_ne!(second, first);
    assert!(
        store.load(&first).await.unwrap().is_none(),
        "old session survived login"
    );
    assert_eq!(store.load(&second).await.unwrap().unwrap().user_id(), "bob");
}

#[tokio::test]
async fn logout_deletes_the_session_and_expires_the_cookie() {
    let store = Arc::new(MemoryStore::new(SessionConfig::default()));
    let app = app(store.clone());
    let (token, _) = store.create(NewSession::new("alice")).await.unwrap();
    let (status, _, res) = send(&app, request("POST", "/logout", Some(&token))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let set = res.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(
        set.starts_with("__Host-session=;") && set.contains("Max-Age=0"),
        "{set}"
    );
    assert!(store.load(&token).await.unwrap().is_none());
    expect(
        &app,
        "/login_required",
        Some(&token),
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
}

#[tokio::test]
async fn role_removed_is_refused_on_next_request() {
    let server = RedisServer::start().unwrap();
    let config = SessionConfig::builder()
        .key_prefix(crate::common::unique_prefix())
        .build()
        .unwrap();
    let store = Arc::new(RedisStore::connect(server.url(), config).await.unwrap());
    let app = app(store.clone());
    let (token, _) = store
        .create(NewSession::new("carol").with_roles(["ADMIN", "USER"]))
        .await
        .unwrap();
    expect(&app, "/has_role", Some(&token), StatusCode::OK, "").await;
    store
        .set_user_authz("carol", &["USER".to_owned()], &[])
        .await
        .unwrap();
    expect(
        &app,
        "/has_role",
        Some(&token),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    expect(&app, "/login_required", Some(&token), StatusCode::OK, "").await;
}

#[tokio::test]
async fn handlers_read_and_write_session_data() {
    let store = Arc::new(MemoryStore::new(SessionConfig::default()));
    let app = app(store.clone());
    let (token, _) = store.create(NewSession::new("dora")).await.unwrap();
    for n in 1..=3 {
        let (status, json, _) = send(&app, request("GET", "/visit", Some(&token))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(json["visits"], n);
    }
    let session = store.load(&token).await.unwrap().unwrap();
    assert_eq!(session.data().get::<u32>("visits").unwrap(), Some(3));
}

#[fresh_login(max_age = "1s")]
async fn fresh_only() -> &'static str {
    body_ran()
}

async fn reauth(mut auth: AuthSession) -> Result<StatusCode, Error> {
    auth.reauthenticate("password").await?;
    Ok(StatusCode::NO_CONTENT)
}

fn fresh_app(store: Arc<dyn SessionStore>) -> Router {
    Router::new()
        .route("/fresh", get(fresh_only))
        .route("/reauth", post(reauth))
        .merge(
            Router::new()
                .route("/fresh_layer", get(|| async { body_ran() }))
                .route_layer(Require::fresh(Duration::from_secs(1))),
        )
        .layer(SessionLayer::new(store))
}

/// The new session cookie's token in an answer.
fn set_token(res: &Response<()>) -> Token {
    let set = res.headers()[header::SET_COOKIE].to_str().unwrap();
    let value = set
        .strip_prefix(&format!("{COOKIE}="))
        .and_then(|v| v.split(';').next())
        .unwrap();
    Token::parse(value).unwrap()
}

/// The default configuration on `clock`: time moves when the test says, not by sleeping.
fn manual(clock: &Clock) -> SessionConfig {
    SessionConfig::builder()
        .clock(clock.clone())
        .build()
        .expect("a valid configuration")
}

#[tokio::test]
async fn fresh_login_guards_refuse_a_stale_session_as_reauthentication_required() {
    let clock = Clock::manual(SystemTime::now());
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new(manual(&clock)));
    let app = fresh_app(Arc::clone(&store));
    let (token, _) = store.create(NewSession::new("fay")).await.unwrap();
    for path in ["/fresh", "/fresh_layer"] {
        expect(
            &app,
            path,
            None,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
        expect(&app, path, Some(&token), StatusCode::OK, "").await;
    }
    clock.advance(Duration::from_millis(2100)).unwrap();
    for path in ["/fresh", "/fresh_layer"] {
        let before = ran();
        expect(
            &app,
            path,
            Some(&token),
            StatusCode::UNAUTHORIZED,
            "reauthentication_required",
        )
        .await;
        assert_eq!(ran(), before, "{path}: the body ran for a stale session");
    }
    // Re-authenticating: a new token, fresh again; the old token is dead.
    let (status, _, res) = send(&app, request("POST", "/reauth", Some(&token))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let new = set_token(&res);
    assert_ne!(new, token);
    for path in ["/fresh", "/fresh_layer"] {
        expect(&app, path, Some(&new), StatusCode::OK, "").await;
        expect(
            &app,
            path,
            Some(&token),
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
    }
}

#[tokio::test]
async fn a_stale_session_goes_through_the_apps_rejection_handler() {
    let clock = Clock::manual(SystemTime::now());
    let store = Arc::new(MemoryStore::new(manual(&clock)));
    let app = Router::new().route("/fresh", get(fresh_only)).layer(
        SessionLayer::new(store.clone())
            .with_cookie(CookieConfig::default().secure(false).name("sid"))
            .with_rejection(|rejection, _| match rejection {
                Rejection::ReauthenticationRequired { .. } => {
                    Redirect::to("/reauth?next=/fresh").into_response()
                }
                Rejection::Unauthenticated { .. } => Redirect::to("/login").into_response(),
                other => other.into_response(),
            }),
    );
    let (token, _) = store.create(NewSession::new("gil")).await.unwrap();
    clock.advance(Duration::from_millis(2100)).unwrap();
    let req = Request::builder()
        .uri("/fresh")
        .header(header::COOKIE, format!("sid={}", token.as_cookie_value()))
        .body(Body::empty())
        .unwrap();
    let res = app.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[header::LOCATION], "/reauth?next=/fresh");
}

#[tokio::test]
async fn rejections_can_be_replaced_for_html_apps() {
    let store = Arc::new(MemoryStore::new(SessionConfig::default()));
    let app = Router::new().route("/admin", get(role)).layer(
        SessionLayer::new(store.clone())
            .with_cookie(CookieConfig::default().secure(false).name("sid"))
            .with_rejection(|rejection, _| match rejection {
                Rejection::Unauthenticated { .. } => Redirect::to("/login").into_response(),
                other => other.into_response(),
            }),
    );
    let res = app
        .clone()
        .oneshot(request("GET", "/admin", None))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[header::LOCATION], "/login");
    let (token, _) = store.create(NewSession::new("eve")).await.unwrap();
    let req = Request::builder()
        .uri("/admin")
        .header(header::COOKIE, format!("sid={}", token.as_cookie_value()))
        .body(Body::empty())
        .unwrap();
    let res = app.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

fn vary_has_cookie(res: &Response<()>) -> bool {
    res.headers()
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case("cookie"))
}

#[tokio::test]
async fn answers_to_requests_with_a_session_are_not_cacheable_and_vary_by_cookie() {
    let store = Arc::new(MemoryStore::new(SessionConfig::default()));
    let app = app(store.clone());
    let (plain, _) = users(store.as_ref()).await;
    // Allowed, refused by a guard, no such route, and a route that never loads the session.
    for (path, status) in [
        ("/login_required", StatusCode::OK),
        ("/has_role", StatusCode::FORBIDDEN),
        ("/nowhere", StatusCode::NOT_FOUND),
        ("/layered", StatusCode::FORBIDDEN),
    ] {
        let (got, _, res) = send(&app, request("GET", path, Some(&plain))).await;
        assert_eq!(got, status, "{path}");
        assert_eq!(
            res.headers()
                .get(header::CACHE_CONTROL)
                .map(|v| v.as_bytes()),
            Some(&b"no-store"[..]),
            "{path} with a live session: {:?}",
            res.headers()
        );
        assert!(vary_has_cookie(&res), "{path}: {:?}", res.headers());
    }
    // A handler's own Vary is kept, with Cookie added once.
    let with_vary = Router::new()
        .route(
            "/v",
            get(|| async { ([(header::VARY, "Accept-Encoding")], "ok") }),
        )
        .layer(SessionLayer::new(store.clone()));
    let (_, _, res) = send(&with_vary, request("GET", "/v", Some(&plain))).await;
    let vary: Vec<_> = res.headers().get_all(header::VARY).iter().collect();
    assert!(
        vary_has_cookie(&res)
            && vary
                .iter()
                .any(|v| v.to_str().unwrap().contains("Accept-Encoding")),
        "{vary:?}"
    );
    // Anonymous answers vary by cookie but are left cacheable.
    let (_, _, res) = send(&app, request("GET", "/nowhere", None)).await;
    assert!(vary_has_cookie(&res), "{:?}", res.headers());
    assert!(res.headers().get(header::CACHE_CONTROL).is_none());
    // Setting and clearing the cookie: no-store and Vary too.
    let (_, _, res) = send(&app, json_request("/login", r#"{"user":"alice"}"#, None)).await;
    assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
    assert!(vary_has_cookie(&res));
    let (_, _, res) = send(&app, request("POST", "/logout", Some(&plain))).await;
    assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
    assert!(vary_has_cookie(&res));
}

#[tokio::test]
async fn two_session_cookies_are_treated_as_none_whichever_is_live() {
    let store = Arc::new(MemoryStore::new(SessionConfig::default()));
    let app = app(store.clone());
    let (plain, boss) = users(store.as_ref()).await;
    let (plain, boss) = (plain.as_cookie_value(), boss.as_cookie_value());
    for lines in [
        vec![format!("{COOKIE}={boss}; {COOKIE}={plain}")],
        vec![format!("{COOKIE}={plain}; {COOKIE}={boss}")],
        vec![format!("{COOKIE}={boss}; {COOKIE}={boss}")],
        vec![format!("{COOKIE}={boss}; {COOKIE}=garbage")],
        vec![format!("{COOKIE}=garbage; {COOKIE}={boss}")],
        vec![format!("{COOKIE}={boss}"), format!("{COOKIE}={plain}")],
    ] {
        let mut req = Request::builder().uri("/has_role");
        for line in &lines {
            req = req.header(header::COOKIE, line.as_str());
        }
        let (status, json, _) = send(&app, req.body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{lines:?}: {json}");
    }
    // One of ours among other cookies is still the session.
    let req = Request::builder()
        .uri("/has_role")
        .header(header::COOKIE, format!("a=1; {COOKIE}={boss}; {COOKIE}2=x"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, req).await.0, StatusCode::OK);
}

#[tokio::test]
async fn missing_layer_is_a_clear_server_error() {
    let app = Router::new().route("/me", get(login_only));
    let (status, json, _) = send(&app, request("GET", "/me", None)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(json["message"].as_str().unwrap().contains("SessionLayer"));
}

fn cookie_token(set_cookie: &str) -> Token {
    let value = set_cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v)
        .unwrap();
    Token::parse(value).unwrap()
}

#[tokio::test]
async fn the_rejection_handler_also_answers_errors_returned_with_question_mark_and_checks() {
    async fn fails() -> Result<&'static str, Error> {
        Err(Error::NotFound)
    }
    async fn checks(user: CurrentUser) -> Result<&'static str, Rejection> {
        Require::role("ADMIN").check(&user)?;
        Ok("ok")
    }
    let store = Arc::new(MemoryStore::new(SessionConfig::default()));
    let app = Router::new()
        .route("/err", get(fails))
        .route("/check", get(checks))
        .route(
            "/layer",
            get(|| async { "ok" }).route_layer(Require::role("ADMIN")),
        )
        .layer(
            SessionLayer::new(store.clone())
                .with_cookie(CookieConfig::default().secure(false).name("sid"))
                .with_rejection(|rejection, _| match rejection {
                    Rejection::Unauthenticated { .. } => Redirect::to("/login").into_response(),
                    Rejection::Forbidden { .. } => Redirect::to("/denied").into_response(),
                    other => other.into_response(),
                }),
        );
    let (token, _) = store.create(NewSession::new("eve")).await.unwrap();
    for (path, location) in [
        ("/err", "/login"),
        ("/check", "/denied"),
        ("/layer", "/denied"),
    ] {
        let req = Request::builder()
            .uri(path)
            .header(header::COOKIE, format!("sid={}", token.as_cookie_value()))
            .body(Body::empty())
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(res.headers()[header::LOCATION], location, "{path}");
    }
}
